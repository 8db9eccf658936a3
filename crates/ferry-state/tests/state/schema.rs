//! Schema versions: fresh databases, reopening, refusal of newer and
//! foreign files, and an upgrade that fails half-way.

use crate::common::{names, plain_pair, reopen, temp_db};
use ferry_state::{SCHEMA_VERSION, State, StateError};
use rusqlite::Connection;
use std::path::Path;

fn user_version(path: &Path) -> u32 {
    Connection::open(path)
        .expect("raw open")
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version")
}

fn schema_objects(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).expect("raw open");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema ORDER BY name")
        .expect("prepare");
    stmt.query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_fresh_database_gets_the_current_version() {
    let (_dir, path) = temp_db();
    drop(State::open(&path).expect("open"));
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    assert!(schema_objects(&path).contains(&"intents".to_string()));
}

#[test]
fn reopening_migrates_nothing_and_keeps_everything() {
    let (_dir, path) = temp_db();
    let mut state = State::open(&path).expect("open");
    let inbox = state.add_folder(&names("INBOX", "INBOX")).expect("add");
    state.insert_pairs(&[plain_pair(inbox, 1)]).expect("insert");
    drop(state);
    let objects = schema_objects(&path);
    for _ in 0..2 {
        let state = reopen(&path).expect("reopen");
        assert_eq!(state.load_pairs(inbox).expect("load").len(), 1);
    }
    assert_eq!(schema_objects(&path), objects);
    assert_eq!(user_version(&path), SCHEMA_VERSION);
}

#[test]
fn a_newer_database_is_refused_and_left_alone() {
    let (_dir, path) = temp_db();
    drop(State::open(&path).expect("open"));
    let newer = SCHEMA_VERSION + 1;
    Connection::open(&path)
        .expect("raw open")
        .pragma_update(None, "user_version", newer)
        .expect("set user_version");

    let err = State::open(&path).expect_err("newer schema must be refused");
    assert!(
        matches!(err, StateError::TooNew { found, known, .. } if found == newer && known == SCHEMA_VERSION),
        "{err:?}"
    );
    let message = err.to_string();
    let expected = format!(
        "was written by a newer ferry (schema {newer}, this ferry knows up to {SCHEMA_VERSION}); upgrade ferry"
    );
    assert!(message.contains(&expected), "{message}");
    assert!(matches!(
        State::read_status(&path),
        Err(StateError::TooNew { .. })
    ));
    assert_eq!(user_version(&path), newer);
}

#[test]
fn a_foreign_sqlite_file_is_refused() {
    let (_dir, path) = temp_db();
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    Connection::open(&path)
        .expect("raw open")
        .execute_batch("CREATE TABLE contacts (name TEXT)")
        .expect("create");
    let err = State::open(&path).expect_err("foreign file must be refused");
    assert!(
        matches!(err, StateError::Foreign { tables: 1, .. }),
        "{err:?}"
    );
    assert_eq!(schema_objects(&path), ["contacts"]);
    let mode: String = Connection::open(&path)
        .expect("raw open")
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "delete", "a refused file is not switched to WAL");
}

#[test]
fn a_failed_upgrade_changes_nothing() {
    // A ferry-marked file at version 0 that already has a `folders` table:
    // step 1 fails part-way, and its exclusive transaction rolls back.
    let (_dir, path) = temp_db();
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let conn = Connection::open(&path).expect("raw open");
    conn.execute_batch("PRAGMA application_id = 1179800153; CREATE TABLE folders (x INTEGER);")
        .expect("prepare the trap");
    drop(conn);
    let err = State::open(&path).expect_err("the upgrade must fail");
    assert!(
        err.to_string().contains("upgrade the schema to version 1"),
        "{err}"
    );
    assert_eq!(user_version(&path), 0);
    assert_eq!(schema_objects(&path), ["folders"]);
}

#[test]
fn a_database_belongs_to_the_account_that_first_claims_it() {
    let (_dir, path) = temp_db();
    let mut state = State::open(&path).expect("open");
    state.claim("ferry@imap.example.org").expect("first claim");
    state
        .claim("ferry@imap.example.org")
        .expect("the same account");
    let refused = state
        .claim("alice@imap.example.org")
        .expect_err("another account");
    assert!(
        matches!(&refused, StateError::OtherOwner { recorded, now, .. }
            if recorded == "ferry@imap.example.org" && now == "alice@imap.example.org"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("move the file away"),
        "{refused}"
    );
    drop(state);
    let mut state = reopen(&path).expect("reopen");
    state
        .claim("ferry@imap.example.org")
        .expect("still the first account's");
}
