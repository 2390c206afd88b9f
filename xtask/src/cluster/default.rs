//! The default-port cluster that `cargo xtask demo` starts or reuses.

use super::*;

/// The state directory of the default-port cluster (`cargo xtask cluster up` without
/// options).
fn default_state_dir() -> Result<PathBuf> {
    resolve_state_dir(&Options {
        action: Action::Up,
        base_port: None,
        state_dir: None,
    })
}

/// Makes sure the default-port cluster is running and returns its name server address.
///
/// * If its state file records every node alive, it is reused (paused nodes are resumed,
///   and both brokers must be registered).
/// * If only some nodes are alive, it is stopped and started fresh.
/// * Otherwise it is started like `cargo xtask cluster up` (installing the peer binaries
///   first if needed), detached, so it keeps running after the xtask exits.
pub(crate) fn ensure_default_cluster() -> Result<String> {
    let state_dir = default_state_dir()?;
    match ClusterState::load(&state_dir) {
        Ok(Some(state)) => {
            let live: Vec<Option<u32>> = state.nodes.iter().map(process::live_pid).collect();
            if live.iter().all(Option::is_some) {
                for (node, pid) in state.nodes.iter().zip(live.iter().flatten()) {
                    if process::pid_paused(*pid) {
                        eprintln!("cluster: {} was paused; resuming it", node.name);
                        process::send_signal(*pid, libc::SIGCONT)
                            .with_context(|| format!("SIGCONT to {}", node.name))?;
                    }
                }
                wait_registered(&state, &[BROKER_A, BROKER_B])?;
                eprintln!(
                    "cluster: reusing the running cluster {} (name server {})",
                    state.cluster_name, state.namesrv_addr
                );
                return Ok(state.namesrv_addr);
            }
            if live.iter().any(Option::is_some) {
                eprintln!("cluster: the default cluster is only partly running; restarting it");
                down(&state_dir)?;
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("cluster: ignoring an unreadable state file: {e:#}"),
    }
    let bins = install::ensure_binaries()?;
    let started = Instant::now();
    let state = up(&state_dir, PortPlan::defaults(), &bins, Detach::Yes)?;
    print_summary(&state);
    eprintln!("cluster: up in {:.1} s", started.elapsed().as_secs_f64());
    Ok(state.namesrv_addr)
}

/// `cargo xtask cluster down` for the default-port cluster.
pub(crate) fn down_default_cluster() -> Result<()> {
    down(&default_state_dir()?).map(|_| ())
}
