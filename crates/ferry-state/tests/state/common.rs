//! Helpers shared by the tests: a fresh database, and pairs with every
//! field set or none.

use ferry_core::{Flag, Flags, PerSide, Side, Uid};
use ferry_state::{Fingerprint, FolderId, MessageKey, Pair, State};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A temporary directory and a database path inside it (not yet created).
pub fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state").join("work.sqlite");
    (dir, path)
}

/// Opens the database again after a `State` of this process was dropped.
/// Another test of this binary may be spawning a child at that moment, and
/// between fork and exec the child holds a copy of every descriptor, the
/// lock's too: a `Locked` error is retried for a few seconds.
pub fn reopen(path: &Path) -> Result<State, ferry_state::StateError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match State::open(path) {
            Err(ferry_state::StateError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// A fresh database with one folder pair, INBOX on both sides.
pub fn state_with_inbox() -> (TempDir, State, FolderId) {
    let (dir, path) = temp_db();
    let mut state = State::open(&path).expect("open");
    let inbox = state
        .add_folder(&names("INBOX", "INBOX"))
        .expect("add INBOX");
    (dir, state, inbox)
}

/// Folder names, far then near.
pub fn names(far: &str, near: &str) -> PerSide<String> {
    PerSide::new(far.to_string(), near.to_string())
}

/// A UID.
pub fn uid(n: u32) -> Uid {
    Uid::new(n).expect("non-zero UID")
}

/// A far UID key.
pub fn uid_key(n: u32) -> MessageKey {
    MessageKey::Uid(uid(n))
}

/// A Maildir key.
pub fn file_key(name: &str) -> MessageKey {
    MessageKey::Name(name.into())
}

/// A distinct fingerprint per `n`.
pub fn fingerprint(n: u64) -> Fingerprint {
    let mut bytes = [0xa5u8; 32];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    Fingerprint::from_bytes(bytes)
}

/// Flags with every standard flag and two keywords.
pub fn every_flag() -> Flags {
    [
        Flag::Draft,
        Flag::Flagged,
        Flag::Forwarded,
        Flag::Answered,
        Flag::Seen,
        Flag::Deleted,
        Flag::Keyword("$Junk".into()),
        Flag::Keyword("$label1".into()),
    ]
    .into_iter()
    .collect()
}

/// A pair with every field set, distinct per `n`.
pub fn full_pair(folder: FolderId, n: u32) -> Pair {
    Pair {
        folder,
        keys: PerSide::new(
            Some(uid_key(n)),
            Some(file_key(&format!("1700000000.M{n}P1.host,U={n}"))),
        ),
        email_ids: PerSide::new(Some(format!("M{n:08x}")), Some(format!("near-{n}"))),
        flags: every_flag(),
        size: Some(4096 + u64::from(n)),
        internal_date: Some(1_700_000_000 + i64::from(n)),
        message_id: Some(format!("<{n}@example.com>")),
        fingerprint: Some(fingerprint(u64::from(n))),
        awaiting_expunge: Some(Side::Far),
    }
}

/// A pair typical of a sync: far UID, near key, a flag, no email ids.
pub fn plain_pair(folder: FolderId, n: u32) -> Pair {
    let mut pair = Pair::new(folder);
    pair.keys = PerSide::new(
        Some(uid_key(n)),
        Some(file_key(&format!("1700000000.M{n}P1.host"))),
    );
    pair.flags.insert(Flag::Seen);
    pair.size = Some(2000 + u64::from(n % 1000));
    pair.internal_date = Some(1_700_000_000 + i64::from(n));
    pair.message_id = Some(format!("<{n}@example.com>"));
    pair.fingerprint = Some(fingerprint(u64::from(n)));
    pair
}
