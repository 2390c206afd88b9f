//! Every example binary, run with `--namesrv` against the real cluster of
//! `cargo xtask test --stage cluster` (skipped without one). The same binaries run
//! against the fake cluster in the `examples` stage.

use std::process::Command;

use rmq_testkit::real_cluster::real_cluster;

const EXAMPLES: &[(&str, &str)] = &[
    ("quickstart", env!("CARGO_BIN_EXE_quickstart")),
    ("callbacks", env!("CARGO_BIN_EXE_callbacks")),
    ("oneway", env!("CARGO_BIN_EXE_oneway")),
    ("ordered", env!("CARGO_BIN_EXE_ordered")),
    ("batch", env!("CARGO_BIN_EXE_batch")),
    ("compression", env!("CARGO_BIN_EXE_compression")),
    ("hooks", env!("CARGO_BIN_EXE_hooks")),
    ("transaction", env!("CARGO_BIN_EXE_transaction")),
    ("delayed", env!("CARGO_BIN_EXE_delayed")),
    ("auto_batch", env!("CARGO_BIN_EXE_auto_batch")),
    ("namespace_acl", env!("CARGO_BIN_EXE_namespace_acl")),
];

#[test]
fn real_cluster_examples_run_against_the_real_cluster() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    for (name, exe) in EXAMPLES {
        let out = Command::new(exe)
            .args(["--namesrv", &cluster.namesrv])
            .output()
            .expect("example starts");
        assert!(
            out.status.success(),
            "example {name} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
