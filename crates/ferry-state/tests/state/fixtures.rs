//! A fixture database for every released schema version, and the test that
//! the current code opens (upgrading as needed) each one with its rows
//! intact.
//!
//! When a release changes the schema: add the migration step, then run
//! `cargo test -p ferry-state --test state -- --ignored generate_fixture`
//! to write `tests/fixtures/schema-vN.sqlite` for the new version (an
//! existing fixture is never overwritten: released files are frozen), and
//! add a `schema_vN_fixture_...` test. The contents below are the v1 rows;
//! a later version's generator may add more, never change these.

use ferry_core::{Flag, Flags, PerSide, Side, Uid, UidValidity};
use ferry_state::{
    DirTimes, Fingerprint, FolderId, IntentAction, IntentState, MessageKey, NewIntent, Pair,
    PairChange, SCHEMA_VERSION, SideMarkers, State,
};
use std::path::{Path, PathBuf};

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("schema-v{version}.sqlite"))
}

#[test]
#[ignore = "writes tests/fixtures/schema-vN.sqlite for the current schema; run when releasing one"]
fn generate_fixture() {
    let path = fixture(SCHEMA_VERSION);
    assert!(
        !path.exists(),
        "{} exists: released fixtures are frozen",
        path.display()
    );
    let mut state = State::open(&path).expect("create the fixture");
    fill_v1(&mut state);
    drop(state);
    // A clean close checkpointed the WAL into the file; only the lock is
    // left over.
    std::fs::remove_file(State::lock_path(&path)).expect("remove the lock file");
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(!side.exists(), "{} left behind", side.display());
    }
}

/// A copy of fixture `version` in a temp dir (never opened in place).
fn copy_of_fixture(version: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("v{version}.sqlite"));
    std::fs::copy(fixture(version), &path).expect("copy the fixture");
    (dir, path)
}

/// What `ferry status` reads of the v1 rows, in any later schema.
fn check_v1_status(path: &Path) {
    let status = State::read_status(path).expect("read").expect("exists");
    assert_eq!(status.pairs(), 4);
    assert_eq!(status.pending_intents, 2);
    let awaiting: u64 = status.folders.iter().map(|f| f.awaiting_expunge).sum();
    assert_eq!(awaiting, 1, "the far-only pair awaits its expunge");
}

#[test]
fn schema_v1_fixture_opens_with_its_rows_intact() {
    let (_dir, path) = copy_of_fixture(1);
    let state = State::open(&path).expect("open and upgrade v1");
    check_v1(&state);
    drop(state);
    check_v1_status(&path);
}

#[test]
fn schema_v2_fixture_opens_with_its_rows_intact() {
    let (_dir, path) = copy_of_fixture(2);
    let mut state = State::open(&path).expect("open v2");
    check_v1(&state);
    state
        .claim("ferry@imap.example.org")
        .expect("no owner recorded yet");
    drop(state);
    check_v1_status(&path);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let indexed: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'pairs_awaiting_expunge'",
            [],
            |row| row.get::<_, i64>(0).map(|n| n == 1),
        )
        .expect("query");
    assert!(indexed, "opening adds the index the status count reads");
}

fn validity(v: u32) -> UidValidity {
    UidValidity::new(v).expect("non-zero")
}

fn uid(n: u32) -> MessageKey {
    MessageKey::Uid(Uid::new(n).expect("non-zero"))
}

fn file(name: &str) -> MessageKey {
    MessageKey::Name(name.into())
}

fn names(far: &str, near: &str) -> PerSide<String> {
    PerSide::new(far.to_string(), near.to_string())
}

fn v1_markers() -> PerSide<SideMarkers> {
    PerSide::new(
        SideMarkers {
            uidnext: Some(4),
            highest_modseq: Some(9_000_000_000),
            mailbox_id: Some("F1234abcd".into()),
            dir_times: None,
        },
        SideMarkers {
            dir_times: Some(DirTimes {
                new_ns: 1_700_000_000_000_000_001,
                cur_ns: 1_700_000_000_000_000_002,
            }),
            ..SideMarkers::default()
        },
    )
}

/// The four v1 pairs: everything set; near only; far only awaiting
/// expunge; UIDs on both sides (`migrate`).
fn v1_pairs(inbox: FolderId, archive: FolderId) -> Vec<Pair> {
    let mut full = Pair::new(inbox);
    full.keys = PerSide::new(Some(uid(1)), Some(file("1700000000.M1P1.host,U=1")));
    full.email_ids = PerSide::new(Some("Memail1".into()), None);
    full.flags = [
        Flag::Seen,
        Flag::Answered,
        Flag::Keyword("$Junk".into()),
        Flag::Keyword("$label1".into()),
    ]
    .into_iter()
    .collect();
    full.size = Some(4321);
    full.internal_date = Some(1_700_000_001);
    full.message_id = Some("<one@example.com>".into());
    full.fingerprint = Fingerprint::from_hex(&"0123456789abcdef".repeat(4));

    let mut near_only = Pair::new(inbox);
    near_only.keys.near = Some(file("1700000002.M2P2.host"));
    near_only.flags = Flags::from_maildir_info("F");

    let mut far_only = Pair::new(inbox);
    far_only.keys.far = Some(uid(3));
    far_only.flags = Flags::from_maildir_info("ST");
    far_only.awaiting_expunge = Some(Side::Far);

    let mut migrated = Pair::new(archive);
    migrated.keys = PerSide::new(Some(uid(10)), Some(uid(20)));
    migrated.message_id = Some("<four@example.com>".into());
    vec![full, near_only, far_only, migrated]
}

fn v1_intents(inbox: FolderId, archive: FolderId) -> Vec<NewIntent> {
    let mut upload = Pair::new(inbox);
    upload.keys.near = Some(file("1700000005.M5P5.host"));
    upload.message_id = Some("<five@example.com>".into());
    upload.size = Some(555);
    vec![
        // Left pending: an APPEND and a move.
        NewIntent {
            side: Side::Far,
            folder: inbox,
            pair: None,
            action: IntentAction::Append {
                pair: upload,
                uidnext_before: Some(4),
            },
        },
        NewIntent {
            side: Side::Far,
            folder: inbox,
            pair: None,
            action: IntentAction::Move {
                to_folder: archive,
                key: uid(1),
                to_uidnext_before: Some(11),
            },
        },
        // Completed.
        NewIntent {
            side: Side::Far,
            folder: inbox,
            pair: None,
            action: IntentAction::SetFlags {
                key: uid(1),
                add: Flags::from_maildir_info("R"),
                remove: Flags::new(),
            },
        },
    ]
}

fn fill_v1(state: &mut State) {
    let inbox = state.add_folder(&names("INBOX", "INBOX")).expect("add");
    let archive = state
        .add_folder(&names("Archive/2024", "Archive/2024"))
        .expect("add");
    state
        .observe_validity(inbox, Side::Far, validity(1_700_000_000))
        .expect("validity");
    state
        .commit_folder_sync(inbox, &v1_markers())
        .expect("markers");
    state
        .insert_pairs(&v1_pairs(inbox, archive))
        .expect("pairs");
    let ids = state
        .record_intents(&v1_intents(inbox, archive))
        .expect("intents");
    state
        .complete(ids[2], PairChange::Nothing)
        .expect("complete");
}

fn check_v1(state: &State) {
    let folders = state.folders().expect("folders");
    assert_eq!(folders.len(), 2);
    let (inbox, archive) = (&folders[0], &folders[1]);
    assert_eq!(inbox.names, names("INBOX", "INBOX"));
    assert_eq!(archive.names, names("Archive/2024", "Archive/2024"));
    assert_eq!(
        inbox.validity,
        PerSide::new(Some(validity(1_700_000_000)), None)
    );
    assert_eq!(inbox.markers, v1_markers());
    assert!(inbox.last_sync_ms.is_some() && archive.last_sync_ms.is_none());

    let mut pairs = state.load_pairs(inbox.id).expect("pairs");
    pairs.extend(state.load_pairs(archive.id).expect("pairs"));
    let pairs: Vec<Pair> = pairs.into_iter().map(|stored| stored.pair).collect();
    assert_eq!(pairs, v1_pairs(inbox.id, archive.id));

    let journal = state.intents().expect("journal");
    let expected = v1_intents(inbox.id, archive.id);
    assert_eq!(journal.len(), expected.len());
    for (found, recorded) in journal.iter().zip(&expected) {
        assert_eq!(found.action, recorded.action);
        assert_eq!((found.side, found.folder), (recorded.side, recorded.folder));
    }
    let states: Vec<IntentState> = journal.iter().map(|i| i.state).collect();
    assert_eq!(
        states,
        [
            IntentState::Pending,
            IntentState::Pending,
            IntentState::Done
        ]
    );
    assert!(state.check_integrity().expect("check").is_empty());
}
