//! `ferry sync` against a real Dovecot that refuses part of the work: a
//! message over the user's quota (OVERQUOTA), a folder deleted by another
//! client in the middle of the run (TRYCREATE / NONEXISTENT). Only what was
//! refused is skipped, named in the report with exit 3; the rest completes,
//! and the next run retries what was skipped.

mod support;

use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::path::Path;
use support::{NOTHING_DONE, Setup, message};

/// Writes message `n` (LF line endings) into `folder`'s `cur/`, padded
/// with `padding` bytes of body.
fn write_local(folder: &Path, name: &str, n: u32, padding: usize) {
    let mut text = String::from_utf8(message(n))
        .expect("utf-8")
        .replace("\r\n", "\n");
    for _ in 0..padding / 64 {
        text.push_str(&"x".repeat(63));
        text.push('\n');
    }
    std::fs::write(folder.join("cur").join(name), text).expect("write");
}

/// The Message-IDs of `folder` on the server, sorted.
fn server_ids(setup: &Setup, folder: &str) -> Vec<String> {
    let mut ids: Vec<String> = setup
        .dovecot
        .messages(USER, folder)
        .expect("messages")
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    ids.sort();
    ids
}

fn ids(numbers: &[u32]) -> Vec<String> {
    let mut ids: Vec<String> = numbers
        .iter()
        .map(|n| format!("<m{n}@sync.test>"))
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_message_over_quota_is_skipped_named_and_uploaded_once_there_is_room() {
    let dovecot = Dovecot::start(DovecotOptions {
        quota: true,
        ..Default::default()
    })
    .expect("dovecot");
    dovecot.set_quota(USER, Some(100)).expect("quota");
    let setup = Setup::with(dovecot);
    setup.local_folder("INBOX");
    setup.local_folder("Work");
    let inbox = setup.maildir().join("INBOX");
    for n in 1..=4 {
        write_local(&inbox, &format!("100{n}.M1P1.host:2,S"), n, 2_000);
    }
    // 300 KiB: over the 100 KiB quota on its own.
    write_local(&inbox, "1005.M1P1.host:2,S", 5, 300 * 1024);
    let work = setup.maildir().join("Work");
    write_local(&work, "1006.M1P1.host:2,", 6, 1_000);
    write_local(&work, "1007.M1P1.host:2,", 7, 1_000);

    let refused = setup.ferry(&["sync"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stdout
            .contains("failed: copying 1005.M1P1.host in INBOX")
            && refused.stdout.contains("[OVERQUOTA]"),
        "the report names the refusal and the folder: {refused:?}"
    );
    assert_eq!(
        server_ids(&setup, "INBOX"),
        ids(&[1, 2, 3, 4]),
        "{refused:?}"
    );
    assert_eq!(server_ids(&setup, "Work"), ids(&[6, 7]), "{refused:?}");
    assert_eq!(setup.files("INBOX").len(), 5, "nothing removed locally");

    // Still over quota: skipped again, nothing else happens.
    let again = setup.ferry(&["sync"]);
    assert_eq!(again.code, 3, "{again:?}");
    assert_eq!(server_ids(&setup, "INBOX"), ids(&[1, 2, 3, 4]), "{again:?}");

    setup.dovecot.set_quota(USER, None).expect("lift quota");
    let retried = setup.sync();
    assert!(retried.stdout.contains("pushed 1"), "{retried:?}");
    assert_eq!(
        server_ids(&setup, "INBOX"),
        ids(&[1, 2, 3, 4, 5]),
        "{retried:?}"
    );
    assert_eq!(setup.files("INBOX").len(), 5, "{retried:?}");
    let quiet = setup.sync();
    assert!(quiet.stdout.contains(NOTHING_DONE), "{quiet:?}");
}

/// Another client deletes a folder on the server while ferry moves a
/// message into it: the MOVE is refused (TRYCREATE), only that folder is
/// skipped, the rest completes, and no local message is lost, then or in
/// the runs after (which hold the vanished folder back with exit 4 and say
/// what to do, rather than delete its local copy).
#[test]
fn a_folder_deleted_on_the_server_during_the_run_skips_only_that_folder() {
    // 40 ms each way: ferry's MOVE reaches the server well after the other
    // client's DELETE, which goes straight to it.
    let (setup, _proxy) = Setup::distant(DovecotOptions::default(), "");
    let mut client = setup.dovecot.client().expect("client");
    client.create("Work").expect("create");
    setup.append_messages("INBOX", 1..=2, &[]);
    setup.append_messages("Work", 3..=4, &["\\Seen"]);
    setup.sync();
    write_local(&setup.maildir().join("INBOX"), "2001.M1P1.host:2,S", 5, 0);
    let (_, _, first) = setup.files("INBOX").remove(0);
    let moved = setup
        .maildir()
        .join("Work/cur")
        .join(first.file_name().expect("name"));
    std::fs::rename(&first, moved).expect("move locally");

    let mut deleted = false;
    let during = setup.ferry_acting(|line| {
        if !deleted && line.contains(" C: ") && line.contains(" UID MOVE ") {
            client.delete("Work").expect("delete");
            deleted = true;
        }
    });
    assert!(deleted, "{during:?}");
    assert_eq!(during.code, 3, "{during:?}");
    assert!(during.stdout.contains("[TRYCREATE]"), "{during:?}");
    assert!(
        server_ids(&setup, "INBOX").contains(&ids(&[5])[0]),
        "{during:?}"
    );
    let local = |folder: &str| setup.files(folder).len();
    assert_eq!((local("INBOX"), local("Work")), (2, 3), "{during:?}");

    for _ in 0..2 {
        let next = setup.ferry(&["sync"]);
        assert_eq!(next.code, 4, "{next:?}");
        assert!(
            next.stdout.contains("folder Work is gone from the server"),
            "{next:?}"
        );
        assert_eq!(local("Work"), 3, "nothing lost locally: {next:?}");
    }
}

/// A message the server cannot read (Dovecot answers its FETCH with an
/// internal error and a BYE): its folder is skipped and named, exit 3, and
/// the other folders still sync, over a new connection.
#[test]
fn a_message_the_server_cannot_read_skips_its_folder_not_the_run() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let setup = Setup::with(dovecot);
    let mut client = setup.dovecot.client().expect("client");
    client.create("Work").expect("create");
    setup.append_messages("INBOX", 1..=2, &[]);
    setup.append_messages("Work", 3..=4, &[]);
    // Dovecot reads a file that starts like gzip through its zlib plugin;
    // a corrupt one fails every FETCH that reads it.
    let cur = setup.dovecot.maildir(USER).join("cur");
    std::fs::write(
        cur.join("1700000000.corrupt.host:2,"),
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00garbage, not deflate",
    )
    .expect("write");
    setup.dovecot.fix_ownership().expect("chown");

    let first = setup.ferry(&["sync"]);
    assert_eq!(first.code, 3, "{first:?}");
    assert!(first.stdout.contains("INBOX"), "{first:?}");
    assert_eq!(setup.files("Work").len(), 2, "{first:?}");
    let again = setup.ferry(&["sync"]);
    assert_eq!(again.code, 3, "{again:?}");
}
