//! Project automation for the rmq workspace, run as `cargo xtask <command>`
//! (see `cargo xtask help`). Arguments are parsed by hand to keep this crate
//! quick to build; bad arguments print usage and exit with status 2.

mod bench;
mod chaos;
mod cluster;
mod demo;
mod examples;
mod fuzz;
mod install;
mod layering;
mod soak;
mod test;
mod util;

use std::process::ExitCode;

use util::UsageError;

/// Usage text of `cargo xtask` itself.
const USAGE: &str = "\
usage: cargo xtask <command> [arguments]

commands:
  test [--quick] [--stage NAME]...     the CI stages (what .ci/run runs); see `cargo xtask test --help`
  cluster ...                          a real RocketMQ cluster on loopback
  demo [--down]                        start (or reuse) the default-port cluster, run `rmq demo`
                                       against it: send a mix of messages, read them back, check
  fuzz --target T|all --duration D [--jobs N]
                                       libFuzzer runs with cargo +nightly fuzz (not part of CI)
  fuzz --list                          the fuzz targets
  chaos --duration D [--seed S]        seeded chaos (matrix G1, G2) against the fake cluster, release
                                       mode; D of virtual time per seed; see `cargo xtask chaos --help`
  bench compare [options]              rmq vs rocketmq-client-rust 1.0.0, in pairs, against the
                                       null broker and a real cluster; see `cargo xtask bench --help`
  soak [--messages N]                  release-mode soak: N async sends (default 1 000 000) with
                                       connection kills; heap, fds, tables back to baseline
  help                                 this text";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let wants_help = rest.iter().any(|a| a == "-h" || a == "--help");
    let result = match command.as_deref() {
        None => Err(UsageError::new(USAGE, "no command given").into()),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("test") if wants_help => {
            println!("{}", test::USAGE);
            Ok(())
        }
        Some("fuzz") if wants_help => {
            println!("{}", fuzz::USAGE);
            Ok(())
        }
        Some("soak") if wants_help => {
            println!("{}", soak::USAGE);
            Ok(())
        }
        Some("soak") => soak::cli(rest),
        Some("chaos") if wants_help => {
            println!("{}", chaos::USAGE);
            Ok(())
        }
        Some("chaos") => chaos::cli(rest),
        Some("test") => test::cli(rest),
        Some("fuzz") => fuzz::cli(rest),
        Some("cluster") => cluster::cli(rest),
        Some("bench") => bench::cli(rest),
        Some("demo") => demo::cli(rest),
        Some(other) => Err(UsageError::new(USAGE, format!("unknown command `{other}`")).into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<UsageError>() {
            Some(usage) => {
                eprintln!("error: {}\n\n{}", usage.message, usage.usage);
                ExitCode::from(2)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
