//! Where the brokers' stores live, and the disk check that keeps a full disk from looking
//! like a broker bug.
//!
//! The rocketmq-rust 1.0.0 store marks itself not writable when its file system is more than
//! `diskSpaceWarningLevelRatio` full, and that ratio is clamped to at most 90 %: on a disk that
//! is 90 % full the broker **refuses to start** ("Rolling back broker startup … Service
//! lifecycle operation failed", with only a "disk capacity requires reclaim" warning as a
//! hint). A build machine whose `target/` directories fill the disk hits exactly that.
//!
//! So the stores go to a tmpfs when one is usable (`/dev/shm` with at least
//! [`MIN_TMPFS_FREE`] free): the test stores are small (16 MiB commit-log files) and gone at
//! reboot anyway. Otherwise they stay under the state directory. `RMQ_CLUSTER_STORE_DIR`
//! overrides the choice. Before a broker starts, [`check_store_fs`] fails with a clear error
//! if the store's file system is already over [`BROKER_REFUSES_AT`].

use std::env;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Free bytes a tmpfs needs before the stores are put there.
pub(crate) const MIN_TMPFS_FREE: u64 = 2 << 30;

/// The used fraction at which the peer broker refuses to start (its clamp of
/// `diskSpaceWarningLevelRatio`), minus a margin for what the tests write.
pub(crate) const BROKER_REFUSES_AT: f64 = 0.88;

const TMPFS: &str = "/dev/shm";

/// Size and use of a file system, from statvfs(3).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FsUsage {
    pub(crate) total: u64,
    pub(crate) available: u64,
}

impl FsUsage {
    /// The used fraction as df(1) computes it: used / (used + available to unprivileged users).
    pub(crate) fn used_ratio(&self) -> f64 {
        let used = self.total.saturating_sub(self.available);
        if self.total == 0 {
            return 0.0;
        }
        used as f64 / self.total as f64
    }
}

/// statvfs of `path`, or of its nearest existing ancestor.
// statvfs field types differ between platforms (u64 on Linux x86_64, u32 elsewhere).
#[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
pub(crate) fn usage(path: &Path) -> Option<FsUsage> {
    let mut probe = path;
    while !probe.exists() {
        probe = probe.parent()?;
    }
    let c_path = CString::new(probe.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; zeroed is a valid value for it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and st a valid out pointer.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = u64::from(st.f_frsize);
    // Like df: blocks in use are f_blocks - f_bfree; "total" as seen by a user is
    // used + f_bavail (root's reserve excluded).
    let used = (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize;
    let available = st.f_bavail as u64 * frsize;
    Some(FsUsage {
        total: used + available,
        available,
    })
}

/// FNV-1a of a path, so that one state directory always maps to one tmpfs directory (a
/// cluster that died without `down` has its store wiped by the next `up`).
fn path_hash(path: &Path) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The directory under which the brokers' stores go (`<root>/<node>/store`), or `None` for
/// "under the node's own directory in the state directory".
pub(crate) fn store_root(state_dir: &Path) -> Option<PathBuf> {
    if let Some(dir) = env::var_os("RMQ_CLUSTER_STORE_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join(format!("{:016x}", path_hash(state_dir))));
    }
    let tmpfs = Path::new(TMPFS);
    if !tmpfs.is_dir() {
        return None;
    }
    let fs = usage(tmpfs)?;
    if fs.available < MIN_TMPFS_FREE {
        return None;
    }
    // SAFETY: getuid never fails.
    let uid = unsafe { libc::getuid() };
    let root = tmpfs.join(format!("rmq-cluster-{uid}-{:016x}", path_hash(state_dir)));
    // writable? (a read-only or foreign /dev/shm falls back to the state directory)
    match std::fs::create_dir_all(&root) {
        Ok(()) => Some(root),
        Err(_) => None,
    }
}

/// Fails with an explanation if the peer broker would refuse to start on `store`'s file
/// system.
pub(crate) fn check_store_fs(node: &str, store: &Path) -> Result<()> {
    let Some(fs) = usage(store) else {
        return Ok(());
    };
    let ratio = fs.used_ratio();
    if ratio >= BROKER_REFUSES_AT {
        bail!(
            "{node}: the file system of its store {} is {:.0}% full ({} GiB free); the \
             rocketmq-rust broker refuses to start above 90% (diskSpaceWarningLevelRatio is \
             capped at 90). Free some space (e.g. `cargo clean` in other checkouts) or point \
             RMQ_CLUSTER_STORE_DIR at a file system with room",
            store.display(),
            ratio * 100.0,
            fs.available >> 30
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_ratio_is_df_like() {
        let fs = FsUsage {
            total: 100,
            available: 25,
        };
        assert!((fs.used_ratio() - 0.75).abs() < 1e-9);
        let empty = FsUsage {
            total: 0,
            available: 0,
        };
        assert_eq!(empty.used_ratio(), 0.0);
    }

    #[test]
    fn one_state_dir_one_store_root() {
        let a = path_hash(Path::new("/x/target/rmq-it-cluster"));
        assert_eq!(a, path_hash(Path::new("/x/target/rmq-it-cluster")));
        assert_ne!(a, path_hash(Path::new("/y/target/rmq-it-cluster")));
    }

    #[test]
    fn usage_of_a_missing_path_is_its_ancestor() {
        let fs = usage(Path::new("/definitely/not/here/rmq")).expect("statvfs of /");
        assert!(fs.total > 0);
    }
}
