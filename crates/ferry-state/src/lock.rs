//! The account lock: an `flock` on a file next to the account's database.
//!
//! The lock is held for a whole run. A second run fails at once (never
//! waits) with the holder's pid, which the file records. The kernel drops
//! the lock when the holder exits, however it dies, so a `kill -9` never
//! leaves an account locked.

use rustix::fs::{FlockOperation, flock};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("the account is locked by another ferry run (pid {pid}) via {path}; try again when it has finished", pid = holder.map_or_else(|| "unknown".to_string(), |p| p.to_string()))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, when the file names one.
        holder: Option<u32>,
    },
    /// The lock file could not be opened or written.
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A held account lock; dropping it releases the lock.
#[derive(Debug)]
pub struct AccountLock {
    file: File,
    path: PathBuf,
}

impl AccountLock {
    /// Takes the lock at `path` (created with mode 0600), or fails at once.
    pub fn acquire(path: &Path) -> Result<AccountLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        if let Err(errno) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if errno == rustix::io::Errno::WOULDBLOCK {
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    holder: read_pid(&mut file),
                });
            }
            return Err(io(errno.into()));
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(AccountLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AccountLock {
    fn drop(&mut self) {
        // Empty the pid so a stale file names no one; closing releases.
        let _ = self.file.set_len(0);
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn second_acquire_fails_naming_the_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.lock");
        let held = AccountLock::acquire(&path).expect("first");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        match AccountLock::acquire(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        // Another test of this binary may be spawning a child right now:
        // between fork and exec the child holds a copy of every descriptor
        // (close-on-exec closes it only at exec), so allow that moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = AccountLock::acquire(&path) {
            assert!(Instant::now() < deadline, "not free after drop: {e}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_killed_holder_releases_the_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("b.lock");
        // util-linux flock(1) takes the same kind of lock on fd 9, which the
        // shell then hands to `sleep` by exec: the holder is the child itself.
        let mut child = Command::new("sh")
            .args(["-c", "exec 9>>\"$0\"; flock -x 9; exec sleep 60"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("flock(1) is installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match AccountLock::acquire(&path) {
                Err(LockError::Held { .. }) => break,
                Ok(lock) => drop(lock),
                Err(e) => panic!("{e}"),
            }
            assert!(Instant::now() < deadline, "child never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if AccountLock::acquire(&path).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "lock still held after kill -9");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
