//! The files of a state: modes, the lock, and reading while a run writes.

use crate::common::{names, plain_pair, reopen, temp_db};
use ferry_state::lock::LockError;
use ferry_state::{State, StateError};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

#[test]
fn the_database_and_its_side_files_are_private() {
    let (_dir, path) = temp_db();
    let mut state = State::open(&path).expect("open");
    let inbox = state.add_folder(&names("INBOX", "INBOX")).expect("add");
    state.insert_pairs(&[plain_pair(inbox, 1)]).expect("insert");
    // While the connection is open in WAL mode, both side files exist.
    let (wal, shm) = (with_suffix(&path, "-wal"), with_suffix(&path, "-shm"));
    assert!(wal.exists() && shm.exists(), "WAL mode keeps -wal and -shm");
    for file in [&path, &wal, &shm, &State::lock_path(&path)] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(path.parent().expect("parent")), 0o700);
    assert_eq!(
        State::lock_path(&path),
        with_suffix(&path, ".lock"),
        "the lock sits next to the database"
    );
}

#[test]
fn a_readable_database_is_tightened() {
    let (_dir, path) = temp_db();
    drop(State::open(&path).expect("create"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(reopen(&path).expect("reopen"));
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn a_second_run_fails_at_once_naming_the_holder() {
    let (_dir, path) = temp_db();
    let held = State::open(&path).expect("first run");
    let err = State::open(&path).expect_err("second run must fail");
    let pid = std::process::id();
    match &err {
        StateError::Locked(LockError::Held { holder, .. }) => assert_eq!(*holder, Some(pid)),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
    drop(held);
    reopen(&path).expect("free once the first run ends");
}

#[test]
fn status_reads_while_a_run_holds_the_lock() {
    let (_dir, path) = temp_db();
    assert_eq!(State::read_status(&path).expect("no state yet"), None);
    let mut state = State::open(&path).expect("open");
    let inbox = state.add_folder(&names("INBOX", "INBOX")).expect("add");
    state
        .insert_pairs(&[plain_pair(inbox, 1), plain_pair(inbox, 2)])
        .expect("insert");
    let status = State::read_status(&path)
        .expect("read while locked")
        .expect("state exists");
    assert_eq!(status.pairs(), 2);
    assert_eq!(status, state.status().expect("status"));
    drop(state);
    // After a clean close (no -wal, no -shm left) a read-only open works too.
    let status = State::read_status(&path).expect("read").expect("exists");
    assert_eq!(status.folders[0].pairs, 2);
}
