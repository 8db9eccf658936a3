//! `ferry sync` and `ferry plan` end to end: the real binary, a private
//! Dovecot, a Maildir in a temp dir.

mod support;

use ferry_testkit::proxy::FaultProxy;
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{NOTHING_DONE, Setup, message, read_subject};

#[test]
fn two_way_sync_of_new_messages_flags_deletions_and_moves() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    for n in 1..=3 {
        let flags: &[&str] = if n == 1 { &["\\Seen"] } else { &[] };
        client
            .append("INBOX", flags, Some(1_700_000_000), &message(n))
            .expect("append");
    }
    client
        .append("Archive", &["\\Seen", "\\Answered"], None, &message(4))
        .expect("append");

    // Initial sync: everything arrives with its flags.
    setup.sync();
    let inbox = setup.files("INBOX");
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    assert_eq!(inbox.iter().filter(|(_, info, _)| info == "S").count(), 1);
    let archive = setup.files("Archive");
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].1, "RS");
    let mtime = std::fs::metadata(&inbox[0].2)
        .expect("stat")
        .modified()
        .expect("mtime");
    assert_eq!(
        mtime
            .duration_since(std::time::UNIX_EPOCH)
            .expect("epoch")
            .as_secs(),
        1_700_000_000
    );

    // A second run changes nothing anywhere.
    let guids: Vec<String> = setup
        .dovecot
        .messages(USER, "INBOX")
        .expect("read")
        .into_iter()
        .map(|m| m.guid)
        .collect();
    let run = setup.sync();
    assert!(run.stdout.contains(NOTHING_DONE), "{run:?}");
    assert_eq!(setup.files("INBOX"), inbox);
    let after: Vec<String> = setup
        .dovecot
        .messages(USER, "INBOX")
        .expect("read")
        .into_iter()
        .map(|m| m.guid)
        .collect();
    assert_eq!(after, guids);

    // Flags both ways, a new local message, a deletion each way, a local move.
    let server = setup.dovecot.messages(USER, "INBOX").expect("read");
    client
        .add_flags("INBOX", &[server[1].uid], &["\\Flagged"])
        .expect("flag");
    let local_unseen = inbox
        .iter()
        .find(|(_, info, _)| info.is_empty())
        .expect("an unseen file")
        .clone();
    let renamed = local_unseen
        .2
        .with_file_name(format!("{}:2,S", local_unseen.0));
    std::fs::rename(
        &local_unseen.2,
        setup
            .maildir()
            .join("INBOX/cur")
            .join(renamed.file_name().expect("name")),
    )
    .expect("mutt reads it");
    std::fs::write(
        setup.maildir().join("INBOX/new/1700000100.M1P1.laptop"),
        message(5)
            .iter()
            .filter(|b| **b != b'\r')
            .copied()
            .collect::<Vec<u8>>(),
    )
    .expect("new local mail");
    client
        .expunge(
            "Archive",
            &[setup.dovecot.messages(USER, "Archive").expect("read")[0].uid],
        )
        .expect("expunge");
    let moved_guid = server[0].guid.clone();
    let moved = setup
        .files("INBOX")
        .into_iter()
        .find(|(_, info, _)| info == "S")
        .expect("seen file");
    let target = setup
        .maildir()
        .join("Archive/cur")
        .join(moved.2.file_name().expect("name"));
    std::fs::rename(&moved.2, &target).expect("mv to Archive");

    let run = setup.sync();
    let inbox_server = setup.dovecot.messages(USER, "INBOX").expect("read");
    let archive_server = setup.dovecot.messages(USER, "Archive").expect("read");
    assert_eq!(archive_server.len(), 1, "{run:?}\n{archive_server:?}");
    assert_eq!(
        archive_server[0].guid, moved_guid,
        "moved on the server, not re-uploaded: {run:?}"
    );
    assert!(
        inbox_server
            .iter()
            .any(|m| m.message_id == "<m5@sync.test>"),
        "{inbox_server:?}"
    );
    assert!(
        inbox_server
            .iter()
            .any(|m| m.flags.contains(&"\\Seen".to_string())
                && m.message_id == local_subject_id(&local_unseen.2, &setup)),
        "{inbox_server:?}"
    );
    assert!(
        setup
            .files("Archive")
            .iter()
            .all(|(_, _, p)| read_subject(p) != "message 4"),
        "expunged on the server, removed locally"
    );
    let flagged_local = setup
        .files("INBOX")
        .into_iter()
        .filter(|(_, info, _)| info.contains('F'))
        .count();
    assert_eq!(flagged_local, 1, "{run:?}");

    // And the next run is empty again.
    let run = setup.sync();
    assert!(run.stdout.contains(NOTHING_DONE), "{run:?}");
}

/// The Message-ID the server should show for a local file that was
/// renamed (read from its content before the rename).
fn local_subject_id(original: &Path, setup: &Setup) -> String {
    let key = original
        .file_name()
        .expect("name")
        .to_string_lossy()
        .split(":2,")
        .next()
        .unwrap_or_default()
        .to_string();
    let file = setup
        .files("INBOX")
        .into_iter()
        .find(|(k, _, _)| *k == key)
        .expect("still there");
    let text = std::fs::read_to_string(file.2).expect("read");
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn plan_changes_nothing_and_a_second_run_is_locked_out() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client
        .append("INBOX", &[], None, &message(1))
        .expect("append");
    let run = setup.ferry(&["plan"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("copy server UID 1 to the maildir"),
        "{run:?}"
    );
    assert!(setup.files("INBOX").is_empty(), "plan wrote nothing");
    let json = setup.ferry(&["plan", "--json"]);
    assert!(json.stdout.contains("\"folders\""), "{json:?}");

    let lock =
        ferry_state::lock::AccountLock::acquire(&setup.home.path().join("state/test.sqlite.lock"))
            .expect("lock");
    let locked = setup.ferry(&["sync"]);
    assert_eq!(locked.code, 75, "{locked:?}");
    assert!(
        locked.stderr.contains(&std::process::id().to_string()),
        "names the holder: {locked:?}"
    );
    drop(lock);
    setup.sync();
    assert_eq!(setup.files("INBOX").len(), 1);
}

#[test]
fn a_server_without_uidplus_or_move_still_syncs_without_duplicates() {
    let setup = Setup::new(DovecotOptions::minimal());
    setup.local_folder("INBOX");
    std::fs::write(
        setup.maildir().join("INBOX/cur/1700000000.M2P2.laptop:2,S"),
        b"Message-ID: <local@sync.test>\nSubject: local\n\nhi\n",
    )
    .expect("file");
    setup.sync();
    setup.sync();
    let server = setup.dovecot.messages(USER, "INBOX").expect("read");
    assert_eq!(server.len(), 1, "uploaded exactly once: {server:?}");
    assert_eq!(server[0].flags, ["\\Seen"]);
    // A local deletion only marks it \Deleted on a server without UIDPLUS.
    for (_, _, path) in setup.files("INBOX") {
        std::fs::remove_file(path).expect("rm");
    }
    setup.sync();
    let server = setup.dovecot.messages(USER, "INBOX").expect("read");
    assert!(
        server
            .iter()
            .all(|m| m.flags.contains(&"\\Deleted".to_string())),
        "{server:?}"
    );
    setup.sync();
    assert!(setup.files("INBOX").is_empty(), "never downloaded again");
}

#[test]
fn a_move_on_the_server_is_a_local_rename_not_a_download() {
    use std::os::unix::fs::MetadataExt;
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    client
        .append("INBOX", &["\\Seen"], None, &message(1))
        .expect("append");
    client
        .append("INBOX", &[], None, &message(2))
        .expect("append");
    setup.sync();
    let before = setup.files("INBOX");
    let inode_of = |path: &Path| std::fs::metadata(path).expect("stat").ino();
    let first = before
        .iter()
        .find(|(_, info, _)| info == "S")
        .expect("seen message")
        .clone();
    let inode = inode_of(&first.2);
    let uid = setup.dovecot.messages(USER, "INBOX").expect("read")[0].uid;
    client
        .move_messages("INBOX", &[uid], "Archive")
        .expect("phone moves it");
    let run = setup.sync();
    assert!(
        run.stdout
            .contains("total: pulled 0, pushed 0, flags 0, moved 1, deleted 0"),
        "{run:?}"
    );
    let archive = setup.files("Archive");
    assert_eq!(archive.len(), 1, "{run:?}");
    assert_eq!(archive[0].0, first.0, "same unique name");
    assert_eq!(
        inode_of(&archive[0].2),
        inode,
        "renamed, not downloaded again"
    );
    assert_eq!(setup.files("INBOX").len(), 1);
}

/// A run killed after an APPEND reached the server but before its pair was
/// recorded: the next run finds the message by Message-ID and size and
/// adopts it instead of uploading it twice.
/// A local message whose upload a killed run journaled (and maybe sent):
/// its CRLF form.
fn journaled_upload(setup: &Setup) -> Vec<u8> {
    use ferry_core::{Flags, MessageKey, PerSide, Side};
    use ferry_state::{IntentAction, NewIntent, Pair, State};
    let lf = b"Message-ID: <up@sync.test>\nSubject: upload\n\nhello\n";
    let crlf: Vec<u8> = String::from_utf8_lossy(lf)
        .replace('\n', "\r\n")
        .into_bytes();
    setup.local_folder("INBOX");
    std::fs::write(
        setup.maildir().join("INBOX/cur/1700000000.M9P9.laptop:2,S"),
        lf,
    )
    .expect("file");
    let (_, uidnext, _) = setup.dovecot.mailbox_status(USER, "INBOX").expect("status");
    let mut state = State::open(&setup.home.path().join("state/test.sqlite")).expect("state");
    let folder = state
        .add_folder(&PerSide::new("INBOX".into(), "INBOX".into()))
        .expect("folder");
    let mut pair = Pair::new(folder);
    pair.keys.near = Some(MessageKey::Name("1700000000.M9P9.laptop".into()));
    pair.flags = Flags::from_maildir_info("S");
    pair.message_id = Some("<up@sync.test>".into());
    pair.size = Some(crlf.len() as u64);
    let intent = NewIntent {
        side: Side::Far,
        folder,
        pair: None,
        action: IntentAction::Append {
            pair,
            uidnext_before: Some(uidnext),
        },
    };
    state.record_intents(&[intent]).expect("journal");
    crlf
}

/// Appends `message` to the server's INBOX, seen, as another client.
fn append_seen(setup: &Setup, message: &[u8]) {
    let mut client = setup.dovecot.client().expect("client");
    client
        .append("INBOX", &["\\Seen"], None, message)
        .expect("append");
}

#[test]
fn an_interrupted_upload_is_adopted_not_duplicated() {
    let setup = Setup::new(DovecotOptions::default());
    let crlf = journaled_upload(&setup);
    // The APPEND happened; then the run was killed.
    append_seen(&setup, &crlf);
    let run = setup.sync();
    assert!(run.stdout.contains("1 copies found done"), "{run:?}");
    assert_eq!(setup.server_count("INBOX"), 1, "{run:?}");
    assert_eq!(setup.files("INBOX").len(), 1);
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

/// The killed run's APPEND was still in flight: the server completes it
/// only after the next run first looked for it.
#[test]
fn an_upload_the_server_completes_late_is_adopted_not_sent_again() {
    use std::io::BufRead;
    let setup = Setup::new(DovecotOptions::default());
    let crlf = journaled_upload(&setup);
    let mut child = (setup.ferry_command(&[], &["sync", "-vv"]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        log.push_str(&line);
        log.push('\n');
        if line.contains("C: ") && line.contains("HEADER Message-ID") {
            break;
        }
    }
    append_seen(&setup, &crlf);
    for line in lines {
        log.push_str(&line.expect("line"));
        log.push('\n');
    }
    let output = child.wait_with_output().expect("ferry ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{log}");
    assert!(log.contains("looking again"), "{log}");
    assert!(stdout.contains("1 copies found done"), "{stdout}\n{log}");
    assert_eq!(setup.server_count("INBOX"), 1, "{stdout}\n{log}");
    assert_eq!(setup.files("INBOX").len(), 1);
}

#[test]
fn sync_traces_show_the_conversation_but_never_the_password() {
    let setup = Setup::new(DovecotOptions::default());
    setup
        .dovecot
        .client()
        .expect("client")
        .append("INBOX", &[], None, &message(1))
        .expect("append");
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("C:") && run.stderr.contains("UID FETCH"),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains(USER.password) && !run.stdout.contains(USER.password),
        "{run:?}"
    );
}

/// The same with the password from a `password_command`, on every
/// connection of the account (helpers log in too): the secret is never in
/// the output, not even encoded in an AUTHENTICATE line.
#[test]
fn a_password_command_secret_stays_out_of_traces_on_every_connection() {
    let setup = Setup::new(DovecotOptions::default());
    let secret = setup.home.path().join("secret");
    std::fs::write(&secret, format!("{}\n", USER.password)).expect("secret");
    let config_path = setup.home.path().join("config.toml");
    let config = std::fs::read_to_string(&config_path)
        .expect("config")
        .replace(
            "password_env = \"FERRY_SYNC_PW\"",
            &format!("password_command = \"cat {}\"", secret.display()),
        );
    std::fs::write(&config_path, config).expect("config");
    let mut client = setup.dovecot.client().expect("client");
    for folder in ["A", "B", "C"] {
        client.create(folder).expect("create");
        client
            .append(folder, &[], None, &message(1))
            .expect("append");
    }
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(!output.contains(USER.password), "{run:?}");
    let logins: Vec<&str> = (output.lines())
        .filter(|l| l.contains("AUTHENTICATE") || l.contains(" LOGIN "))
        .filter(|l| l.contains(": C"))
        .collect();
    assert!(!logins.is_empty(), "{run:?}");
    assert!(
        logins.iter().all(|l| l.contains("<redacted>")),
        "{logins:#?}"
    );
}

/// SIGINT in the middle of an initial sync: the batch in flight is
/// committed, the exit status is 130, and the next run finishes the job
/// without duplicating anything.
#[test]
fn an_interrupted_sync_stops_cleanly_and_the_next_run_completes_it() {
    use ferry_testkit::corpus::{self, CorpusSpec, Sizes};
    let spec = CorpusSpec {
        seed: 9,
        count: 3000,
        sizes: Sizes::Small,
        folders: vec![("INBOX".into(), 1)],
    };
    let options = DovecotOptions::default();
    let layout = options.layout.into();
    let dovecot = Dovecot::start_with(options, |root| {
        corpus::write_maildir(&spec, root, layout).map(drop)
    })
    .expect("dovecot");
    let setup = Setup::with(dovecot);
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sync", "--config"])
        .arg(setup.home.path().join("config.toml"))
        .env("FERRY_SYNC_PW", USER.password)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while setup.files("INBOX").is_empty() {
        assert!(std::time::Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let output = child.wait_with_output().expect("ferry ends");
    let code = output.status.code().expect("exit code");
    let partial = setup.files("INBOX").len();
    eprintln!("interrupted: exit {code} after {partial} of 3000");
    assert!(
        code == 130 || (code == 0 && partial == 3000),
        "exit {code}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    setup.sync();
    let files = setup.files("INBOX");
    assert_eq!(files.len(), 3000, "interrupted after {partial}");
    let mut ids: Vec<String> = files
        .iter()
        .map(|(_, _, p)| {
            std::fs::read_to_string(p)
                .expect("read")
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3000, "no duplicates");
    assert_eq!(setup.server_count("INBOX"), 3000, "nothing uploaded back");
}

/// Switching from mbsync: the Maildir already holds the server's messages
/// under other names and ferry has no state. Nothing is copied; every
/// message is paired by Message-ID and size.
#[test]
fn an_existing_maildir_is_paired_not_copied_again() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    setup.local_folder("INBOX");
    for n in 1..=5 {
        client
            .append("INBOX", &["\\Seen"], None, &message(n))
            .expect("append");
        let lf: Vec<u8> = message(n).into_iter().filter(|b| *b != b'\r').collect();
        let name = format!("1600000000.{n}_0.oldhost,U={n}:2,S");
        std::fs::write(setup.maildir().join("INBOX/cur").join(name), lf).expect("mbsync's file");
    }
    let run = setup.sync();
    assert!(run.stdout.contains("total: pulled 0, pushed 0"), "{run:?}");
    assert_eq!(setup.server_count("INBOX"), 5);
    assert_eq!(setup.files("INBOX").len(), 5);
}

/// mutt's "save to folder" writes a new file under a new name in the
/// other folder and unlinks the old one: still a move on the server.
#[test]
fn a_local_save_to_folder_under_a_new_name_is_a_server_move() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    client
        .append("INBOX", &[], None, &message(1))
        .expect("append");
    setup.sync();
    let guid = setup.dovecot.messages(USER, "INBOX").expect("read")[0]
        .guid
        .clone();
    let (_, _, path) = setup.files("INBOX").pop().expect("file");
    let content = std::fs::read(&path).expect("read");
    std::fs::write(
        setup
            .maildir()
            .join("Archive/cur/1700000999.M1P1.laptop:2,S"),
        content,
    )
    .expect("saved copy");
    std::fs::remove_file(&path).expect("unlink original");
    let run = setup.sync();
    assert!(run.stdout.contains("moved 1"), "{run:?}");
    let archive = setup.dovecot.messages(USER, "Archive").expect("read");
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].guid, guid, "moved, not uploaded again");
    assert!(
        setup
            .dovecot
            .messages(USER, "INBOX")
            .expect("read")
            .is_empty()
    );
}

/// A UIDVALIDITY reset voids every UID: messages are re-paired from the
/// state by Message-ID and size, nothing is downloaded again and nothing
/// local is deleted.
#[test]
fn a_uidvalidity_reset_re_pairs_without_downloading_or_deleting() {
    let setup = Setup::new(DovecotOptions::default());
    setup.append_messages("INBOX", 1..=4, &[]);
    setup.sync();
    let before = setup.files("INBOX");
    let (validity, _, _) = setup.dovecot.mailbox_status(USER, "INBOX").expect("status");
    setup
        .dovecot
        .reset_uidvalidity(USER, "INBOX", validity + 100)
        .expect("reset");
    let run = setup.sync();
    assert!(run.stdout.contains(NOTHING_DONE), "{run:?}");
    assert_eq!(setup.files("INBOX"), before, "the Maildir is untouched");
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

/// A real UIDVALIDITY reset: Dovecot's UID list and indexes are deleted
/// and its files renamed so that it numbers its messages anew in reverse
/// order: the old UIDs now point at other messages. No stale UID is acted
/// on (a local flag change and a local deletion land on the right
/// messages only), nothing is deleted or downloaded again, and the local
/// changes made meanwhile (a flag, a deletion, a new message) reach the
/// server.
#[test]
fn a_real_uidvalidity_reset_renumbers_without_losing_local_changes() {
    let setup = Setup::new(DovecotOptions::default());
    setup.append_messages("INBOX", 1..=6, &["\\Seen"]);
    setup.sync();
    let uids_before = uid_map(&setup);
    let before: Vec<String> = setup
        .files("INBOX")
        .into_iter()
        .map(|(key, _, _)| key)
        .collect();
    let (validity, _, _) = setup.dovecot.mailbox_status(USER, "INBOX").expect("status");
    let local = |subject: &str| {
        let (_, _, path) = setup
            .files("INBOX")
            .into_iter()
            .find(|(_, _, p)| read_subject(p) == subject)
            .expect("local message");
        path
    };
    let second = local("message 2");
    std::fs::rename(&second, second.to_string_lossy().replace(":2,S", ":2,FS")).expect("flag");
    std::fs::remove_file(local("message 5")).expect("delete locally");
    std::fs::write(
        setup.maildir().join("INBOX/cur/1700000000.M7P7.laptop:2,S"),
        String::from_utf8(message(30))
            .expect("utf-8")
            .replace("\r\n", "\n"),
    )
    .expect("new local message");
    renumber_in_reverse(&setup.dovecot.maildir(USER));
    let (new_validity, _, _) = setup.dovecot.mailbox_status(USER, "INBOX").expect("status");
    assert_ne!(new_validity, validity, "Dovecot started over");
    let renumbered = uid_map(&setup);
    assert!(
        uids_before
            .iter()
            .any(|(uid, id)| renumbered.get(uid).is_some_and(|now| now != id)),
        "old UIDs point at other messages now: {uids_before:?} -> {renumbered:?}"
    );
    let run = setup.sync();
    let after: Vec<String> = setup
        .files("INBOX")
        .into_iter()
        .map(|(key, _, _)| key)
        .collect();
    assert_eq!(after.len(), 6, "{run:?}");
    assert!(
        before.iter().filter(|k| after.contains(k)).count() == 5,
        "nothing downloaded again, nothing but message 5 deleted: {run:?}"
    );
    let messages = setup.dovecot.messages(USER, "INBOX").expect("messages");
    let mut ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    let want = [
        "<m1@sync.test>",
        "<m2@sync.test>",
        "<m30@sync.test>",
        "<m3@sync.test>",
        "<m4@sync.test>",
        "<m6@sync.test>",
    ];
    assert_eq!(
        ids, want,
        "only message 5 removed, the new one added: {run:?}"
    );
    let flagged: Vec<&str> = messages
        .iter()
        .filter(|m| m.flags.iter().any(|f| f == "\\Flagged"))
        .map(|m| m.message_id.as_str())
        .collect();
    assert_eq!(flagged, ["<m2@sync.test>"], "{run:?}");
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

/// INBOX on the server: UID -> Message-ID.
fn uid_map(setup: &Setup) -> BTreeMap<u32, String> {
    (setup
        .dovecot
        .messages(USER, "INBOX")
        .expect("messages")
        .into_iter())
    .map(|m| (m.uid, m.message_id))
    .collect()
}

/// Makes Dovecot number the messages of the Maildir `server` anew, in the
/// reverse of their order: its UID list and indexes are deleted, and the
/// files renamed so that they sort the other way round.
fn renumber_in_reverse(server: &Path) {
    for entry in std::fs::read_dir(server).expect("server maildir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "dovecot-uidlist" || name.starts_with("dovecot.index") {
            std::fs::remove_file(entry.path()).expect("remove");
        }
    }
    let cur = server.join("cur");
    let mut names: Vec<String> = std::fs::read_dir(&cur)
        .expect("cur")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let count = names.len();
    for (n, name) in names.iter().enumerate() {
        let info = name.split_once(':').map_or("", |(_, info)| info);
        let renamed = format!("{}.M{n}P1.renumbered:{info}", 1_800_000_000 + count - n);
        std::fs::rename(cur.join(name), cur.join(renamed)).expect("rename");
    }
}

#[test]
fn status_shows_last_sync_folders_and_counts() {
    let setup = Setup::new(DovecotOptions::default());
    let before = setup.ferry(&["status"]);
    assert_eq!(before.code, 0, "{before:?}");
    assert!(
        before.stdout.contains("account test: never synced"),
        "{before:?}"
    );
    let mut client = setup.dovecot.client().expect("client");
    client
        .append("INBOX", &[], None, &message(1))
        .expect("append");
    client
        .append("INBOX", &[], None, &message(2))
        .expect("append");
    setup.sync();
    let after = setup.ferry(&["status"]);
    assert!(
        after.stdout.contains("last sync") && after.stdout.contains("2 messages in 1 folder"),
        "{after:?}"
    );
    assert!(
        after.stdout.contains("  INBOX: 2 messages, synced"),
        "{after:?}"
    );
    let json = setup.ferry(&["status", "--json"]);
    assert!(json.stdout.contains("\"messages\": 2"), "{json:?}");
}

#[test]
fn folder_map_gives_a_server_folder_another_local_name() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let mut client = dovecot.client().expect("client");
    client.create("Sent Items").expect("create");
    client
        .append("Sent Items", &["\\Seen"], None, &message(1))
        .expect("append");
    let setup = Setup::with_extra(dovecot, "folder_map = { \"Sent Items\" = \"Sent\" }\n");
    setup.sync();
    assert_eq!(setup.files("Sent").len(), 1);
    assert!(!setup.maildir().join("Sent Items").exists());
    // And back: a local message in Sent goes to "Sent Items".
    std::fs::write(
        setup.maildir().join("Sent/cur/1700000000.M5P5.laptop:2,S"),
        b"Message-ID: <sent@t>\nSubject: s\n\nx\n",
    )
    .expect("file");
    setup.sync();
    assert_eq!(setup.server_count("Sent Items"), 2);
}

/// A run with nothing to do sends no STORE, APPEND, EXPUNGE or MOVE and
/// touches no file.
#[test]
fn a_no_op_run_changes_nothing_anywhere() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    client
        .append("INBOX", &["\\Seen"], None, &message(1))
        .expect("append");
    client
        .append("Archive", &[], None, &message(2))
        .expect("append");
    setup.sync();
    let snapshot = |folder: &str| -> Vec<(PathBuf, std::time::SystemTime)> {
        setup
            .files(folder)
            .into_iter()
            .map(|(_, _, p)| {
                let modified = std::fs::metadata(&p)
                    .expect("stat")
                    .modified()
                    .expect("mtime");
                (p, modified)
            })
            .collect()
    };
    let before = (snapshot("INBOX"), snapshot("Archive"));
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sent: Vec<&str> = run.stderr.lines().filter(|l| l.contains("C:")).collect();
    assert!(!sent.is_empty(), "{run:?}");
    // The command verb follows the tag: "C: f12 UID STORE ...".
    let verbs: Vec<String> = sent
        .iter()
        .filter_map(|l| l.split("C: ").nth(1))
        .map(|command| {
            command
                .split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for verb in [
        "UID STORE",
        "APPEND",
        "UID EXPUNGE",
        "EXPUNGE",
        "UID MOVE",
        "UID COPY",
        "CREATE",
        "DELETE",
        "RENAME",
    ] {
        assert!(
            !verbs
                .iter()
                .any(|v| v == verb || v.starts_with(&format!("{verb} "))),
            "{verb} sent by a no-op run:\n{}",
            sent.join("\n")
        );
    }
    assert_eq!(
        (snapshot("INBOX"), snapshot("Archive")),
        before,
        "no file changed"
    );
}

#[test]
fn the_maildir_plus_plus_layout_works_both_ways() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let mut client = dovecot.client().expect("client");
    client.create("Archive/2024").expect("create");
    client
        .append("INBOX", &[], None, &message(1))
        .expect("append");
    client
        .append("Archive/2024", &["\\Flagged"], None, &message(2))
        .expect("append");
    let setup = Setup::with_extra(dovecot, "layout = \"maildir++\"\n");
    setup.sync();
    let root = setup.maildir();
    let count = |dir: PathBuf| {
        ["cur", "new"]
            .iter()
            .map(|s| {
                std::fs::read_dir(dir.join(s))
                    .map(|d| d.count())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    assert_eq!(count(root.clone()), 1, "INBOX is the root");
    assert_eq!(count(root.join(".Archive.2024")), 1);
    std::fs::write(
        root.join(".Archive.2024/cur/1700000000.M7P7.laptop:2,S"),
        b"Message-ID: <pp@t>\nSubject: pp\n\nx\n",
    )
    .expect("file");
    setup.sync();
    assert_eq!(setup.server_count("Archive/2024"), 2);
}

/// Folder renames without MAILBOXID, both ways, with a subfolder: seen by
/// their messages turning up under the new name, repeated on the other
/// side; no message is copied (same GUIDs, same inodes) or deleted.
#[test]
fn folder_renames_flow_both_ways_without_copying() {
    use std::os::unix::fs::MetadataExt;
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    for folder in ["Projects", "Projects/Alpha", "Old"] {
        client.create(folder).expect("create");
    }
    for (n, folder) in [
        (1, "Projects"),
        (2, "Projects/Alpha"),
        (3, "Old"),
        (4, "Old"),
    ] {
        client
            .append(folder, &[], None, &message(n))
            .expect("append");
    }
    setup.sync();
    let guids = |folder: &str| -> Vec<String> {
        let mut g: Vec<String> = (setup.dovecot.messages(USER, folder).expect("messages"))
            .into_iter()
            .map(|m| m.guid)
            .collect();
        g.sort();
        g
    };
    let inodes = |folder: &str| -> Vec<u64> {
        let mut i: Vec<u64> = (setup.files(folder).into_iter())
            .map(|(_, _, p)| std::fs::metadata(p).expect("stat").ino())
            .collect();
        i.sort();
        i
    };
    let (projects, alpha) = (guids("Projects"), guids("Projects/Alpha"));
    let old_inodes = inodes("Old");

    // Locally: mv Projects Work (the subfolder goes along).
    std::fs::rename(
        setup.maildir().join("Projects"),
        setup.maildir().join("Work"),
    )
    .expect("mv");
    // On the server: RENAME Old Archive.
    client.rename("Old", "Archive").expect("rename");
    let run = setup.sync();
    assert!(run.stdout.contains(NOTHING_DONE), "{run:?}");
    for line in [
        "folders: rename folder Projects to Work on the server",
        "folders: rename folder Projects/Alpha to Work/Alpha on the server",
        "folders: rename folder Old to Archive on the maildir",
    ] {
        assert!(run.stdout.contains(line), "{line}: {run:?}");
    }
    let listed = client.list().expect("list");
    assert!(
        listed.contains(&"Work".to_string()) && listed.contains(&"Work/Alpha".to_string()),
        "{listed:?}"
    );
    assert!(
        !listed
            .iter()
            .any(|f| f.starts_with("Projects") || f == "Old"),
        "{listed:?}"
    );
    assert_eq!(guids("Work"), projects, "renamed, not copied");
    assert_eq!(guids("Work/Alpha"), alpha, "renamed, not copied");
    assert!(!setup.maildir().join("Old").exists(), "renamed locally");
    assert_eq!(inodes("Archive"), old_inodes, "renamed, not downloaded");
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
    assert_eq!(setup.files("Work/Alpha").len(), 1);
}

/// Not on a terminal, progress is plain lines on stderr (the summary stays
/// on stdout); `--quiet` leaves them out, and a run with nothing to do
/// prints none.
#[test]
fn progress_is_plain_lines_off_a_terminal() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    setup.append_messages("INBOX", 1..=3, &[]);
    let run = setup.sync();
    assert!(
        run.stderr
            .contains("ferry: test: 3 messages to sync in 1 folder"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("ferry: test: INBOX: 0 of 3 messages done"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("messages to sync"), "{run:?}");
    client
        .append("INBOX", &[], None, &message(4))
        .expect("append");
    let quiet = setup.ferry(&["sync", "-q"]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    assert!(quiet.stdout.is_empty(), "quiet: only problems: {quiet:?}");
    let idle = setup.sync();
    assert!(idle.stderr.is_empty(), "{idle:?}");
}

/// The mass-delete guard and the vanished-Maildir guard through the binary:
/// exit 4, a message that says what was seen and what to do, nothing
/// deleted; `--allow-mass-delete` lets the deletions through.
#[test]
fn the_guards_hold_mass_deletions_and_a_vanished_maildir() {
    let setup = Setup::new(DovecotOptions::default());
    setup.append_messages("INBOX", 1..=25, &[]);
    setup.sync();
    for (_, _, path) in setup.files("INBOX").into_iter().skip(3) {
        std::fs::remove_file(path).expect("rm");
    }
    for args in [&["sync"][..], &["sync", "-q"]] {
        let held = setup.ferry(args);
        assert_eq!(held.code, 4, "{held:?}");
        assert!(
            held.stdout.contains(
                "held: 22 of 25 messages would be removed from the server; rerun with --allow-mass-delete"
            ),
            "{held:?}"
        );
        let server = setup.dovecot.messages(USER, "INBOX").expect("messages");
        assert_eq!(server.len(), 25, "nothing deleted");
    }
    let allowed = setup.ferry(&["sync", "--allow-mass-delete"]);
    assert_eq!(allowed.code, 0, "{allowed:?}");
    assert_eq!(setup.server_count("INBOX"), 3);

    // The whole Maildir gone (an unmounted disk): nothing deleted anywhere.
    std::fs::remove_dir_all(setup.maildir()).expect("rm -r");
    let vanished = setup.ferry(&["sync"]);
    assert_eq!(vanished.code, 4, "{vanished:?}");
    assert!(
        vanished.stdout.contains("lists no folder at all"),
        "{vanished:?}"
    );
    assert_eq!(setup.server_count("INBOX"), 3);
}

/// What else can look like everything deleted: the server's copy of a
/// folder emptied (by another client, or a broken server), the Maildir
/// root emptied, a folder directory replaced by an empty one or by a
/// dangling link. Nothing is deleted on the other side: the guard holds
/// (exit 4) or the folder counts as vanished.
#[test]
fn the_guards_hold_whatever_looks_like_everything_deleted() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Lists").expect("create");
    drop(client);
    setup.append_messages("INBOX", 1..=25, &[]);
    setup.append_messages("Lists", 31..=55, &[]);
    setup.sync();
    let local_counts = || (setup.files("INBOX").len(), setup.files("Lists").len());
    let server_counts = || (setup.server_count("INBOX"), setup.server_count("Lists"));

    // The server's INBOX emptied: its local copy is not deleted.
    let uids: Vec<u32> = (setup.dovecot.messages(USER, "INBOX").expect("messages"))
        .iter()
        .map(|m| m.uid)
        .collect();
    let mut client = setup.dovecot.client().expect("client");
    client.expunge("INBOX", &uids).expect("expunge all");
    drop(client);
    let held = setup.ferry(&["sync"]);
    assert_eq!(held.code, 4, "{held:?}");
    assert!(held.stdout.contains("--allow-mass-delete"), "{held:?}");
    assert_eq!(local_counts(), (25, 25), "{held:?}");
    // Put back (as another client restoring them): new messages, which
    // pair with the local ones by Message-ID.
    setup.append_messages("INBOX", 1..=25, &[]);
    let restored = setup.ferry(&["sync"]);
    assert_eq!(restored.code, 0, "{restored:?}");
    assert_eq!((local_counts(), server_counts()), ((25, 25), (25, 25)));

    // A folder directory replaced by an empty one.
    let lists = setup.maildir().join("Lists");
    std::fs::rename(&lists, setup.home.path().join("Lists.saved")).expect("mv");
    setup.local_folder("Lists");
    let held = setup.ferry(&["sync"]);
    assert_eq!(held.code, 4, "{held:?}");
    assert_eq!(server_counts(), (25, 25), "{held:?}");

    // ... or by a link to a disk that is not mounted.
    std::fs::remove_dir_all(&lists).expect("rm");
    std::os::unix::fs::symlink(setup.home.path().join("unmounted/Lists"), &lists).expect("ln");
    let vanished = setup.ferry(&["sync"]);
    assert_ne!(vanished.code, 0, "{vanished:?}");
    assert_eq!(server_counts(), (25, 25), "{vanished:?}");

    // The Maildir root emptied.
    std::fs::remove_file(&lists).expect("rm link");
    std::fs::remove_dir_all(setup.maildir().join("INBOX")).expect("rm");
    let emptied = setup.ferry(&["sync"]);
    assert_eq!(emptied.code, 4, "{emptied:?}");
    assert!(
        emptied.stdout.contains("lists no folder at all"),
        "{emptied:?}"
    );
    assert_eq!(server_counts(), (25, 25), "{emptied:?}");
}

/// A mail tool that rewrites a file under a new unique name, content
/// unchanged: the pair follows the new name; nothing is uploaded, nothing
/// deleted on the server.
#[test]
fn a_file_rewritten_under_a_new_name_is_re_paired_not_uploaded() {
    let setup = Setup::new(DovecotOptions::default());
    setup.append_messages("INBOX", 1..=3, &["\\Seen"]);
    setup.sync();
    let before = setup.dovecot.messages(USER, "INBOX").expect("messages");
    let (_, _, path) = setup.files("INBOX").into_iter().next().expect("a file");
    let content = std::fs::read(&path).expect("read");
    std::fs::write(
        setup.maildir().join("INBOX/cur/1800000000.M1P1.other:2,S"),
        content,
    )
    .expect("rewrite");
    std::fs::remove_file(&path).expect("unlink the old name");
    let run = setup.sync();
    assert!(run.stdout.contains(NOTHING_DONE), "{run:?}");
    let after = setup.dovecot.messages(USER, "INBOX").expect("messages");
    assert_eq!(after, before, "the server is untouched");
    assert_eq!(setup.files("INBOX").len(), 3);
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

/// An editor that rewrites a message under a new name with new content of
/// the same size (same Message-ID too): the content differs, so it is no
/// re-key: the new text is uploaded and the old server copy removed.
#[test]
fn a_message_edited_to_the_same_size_under_a_new_name_is_uploaded() {
    let setup = Setup::new(DovecotOptions::default());
    setup.append_messages("INBOX", 1..=3, &["\\Seen"]);
    setup.sync();
    let (_, _, path) = (setup.files("INBOX").into_iter())
        .find(|(_, _, p)| read_subject(p) == "message 2")
        .expect("message 2");
    let edited = std::fs::read_to_string(&path)
        .expect("read")
        .replace("body of", "BODY OF");
    std::fs::write(
        setup.maildir().join("INBOX/cur/1800000000.M1P1.mutt:2,S"),
        &edited,
    )
    .expect("rewrite");
    std::fs::remove_file(&path).expect("unlink the old name");
    let guid = |messages: &[ferry_testkit::client::ServerMessage]| {
        (messages.iter())
            .find(|m| m.message_id == "<m2@sync.test>")
            .map(|m| (m.guid.clone(), m.size))
            .expect("message 2 on the server")
    };
    let before = guid(&setup.dovecot.messages(USER, "INBOX").expect("messages"));
    let run = setup.sync();
    assert!(
        run.stdout.contains("pushed 1") && run.stdout.contains("deleted 1"),
        "{run:?}"
    );
    let messages = setup.dovecot.messages(USER, "INBOX").expect("messages");
    assert_eq!(messages.len(), 3, "{run:?}");
    let after = guid(&messages);
    assert_ne!(after.0, before.0, "the edited text was uploaded: {run:?}");
    assert_eq!(after.1, before.1, "of the same size");
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

/// A folder deleted on the server and another created there with the same
/// UIDs is no rename: the deleted one is reported as vanished (nothing
/// deleted locally), the new one is synced as new.
#[test]
fn a_deleted_and_a_new_folder_with_the_same_uids_are_no_rename() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("R2023").expect("create");
    setup.append_messages("R2023", 1..=3, &[]);
    setup.sync();
    let (validity, _, _) = setup.dovecot.mailbox_status(USER, "R2023").expect("status");
    client.delete("R2023").expect("delete");
    client.create("R2024").expect("create");
    setup.append_messages("R2024", 11..=13, &[]);
    // Cyrus-like: the same UIDVALIDITY, and the same UIDs 1..=3.
    setup
        .dovecot
        .reset_uidvalidity(USER, "R2024", validity)
        .expect("uidvalidity");
    let run = setup.ferry(&["sync"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stdout.contains("folder R2023 is gone from the server"),
        "{run:?}"
    );
    assert_eq!(setup.files("R2023").len(), 3, "nothing deleted locally");
    let subjects: Vec<String> = (setup.files("R2024").iter())
        .map(|(_, _, p)| read_subject(p))
        .collect();
    assert_eq!(subjects.len(), 3, "{run:?}");
    assert!(
        subjects.iter().all(|s| s.starts_with("message 1")),
        "{subjects:?}"
    );
    assert_eq!(setup.server_count("R2024"), 3);
}

/// A message with a server keyword moved locally keeps the keyword on the
/// server (the Maildir file cannot show it; the state remembers it).
#[test]
fn a_local_move_keeps_server_keywords() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    setup.append_messages("INBOX", 1..=1, &["$Label1", "\\Seen"]);
    setup.sync();
    let (key, info, path) = setup.files("INBOX").remove(0);
    let moved = setup
        .maildir()
        .join("Archive/cur")
        .join(format!("{key}:2,{info}"));
    std::fs::rename(path, moved).expect("mv");
    let run = setup.sync();
    assert!(run.stdout.contains("moved 1"), "{run:?}");
    let archive = setup.dovecot.messages(USER, "Archive").expect("messages");
    assert_eq!(archive.len(), 1, "{run:?}");
    assert!(
        archive[0].flags.contains(&"$Label1".to_string()),
        "{archive:?}"
    );
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
    let archive = setup.dovecot.messages(USER, "Archive").expect("messages");
    assert!(
        archive[0].flags.contains(&"$Label1".to_string()),
        "{archive:?}"
    );
}

/// Without UIDPLUS a message removed locally stays on the server marked
/// \Deleted, out of every plan; restored there (\Deleted taken off), it
/// comes back.
#[test]
fn a_message_restored_on_the_server_comes_back_without_uidplus() {
    let setup = Setup::new(DovecotOptions::minimal());
    setup.append_messages("INBOX", 1..=2, &[]);
    setup.sync();
    let (_, _, path) = setup.files("INBOX").remove(0);
    let subject = read_subject(&path);
    std::fs::remove_file(path).expect("rm");
    setup.sync();
    let status = setup.ferry(&["status"]);
    assert!(
        status
            .stdout
            .contains("1 removed but awaiting expunge on the server"),
        "{status:?}"
    );
    let deleted: Vec<u32> = (setup.dovecot.messages(USER, "INBOX").expect("messages"))
        .into_iter()
        .filter(|m| m.flags.contains(&"\\Deleted".to_string()))
        .map(|m| m.uid)
        .collect();
    assert_eq!(deleted.len(), 1);
    let mut client = setup.dovecot.client().expect("client");
    client
        .remove_flags("INBOX", &deleted, &["\\Deleted"])
        .expect("undelete");
    setup.sync();
    let subjects: Vec<String> = (setup.files("INBOX").iter())
        .map(|(_, _, p)| read_subject(p))
        .collect();
    assert!(subjects.contains(&subject), "{subjects:?}");
    assert_eq!(subjects.len(), 2);
}

/// Folders both sides prove unchanged are not looked into (no SELECT, no
/// readdir of messages); any change on either side, an expunge by another
/// client included, is still seen; `--full` looks into everything; a
/// server without CONDSTORE is always looked into.
#[test]
fn unchanged_folders_are_skipped_and_changes_still_seen() {
    let selects = |run: &support::Run| {
        run.stderr
            .lines()
            .filter(|l| l.contains("C:") && (l.contains(" SELECT ") || l.contains(" EXAMINE ")))
            .count()
    };
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    setup.append_messages("INBOX", 1..=3, &[]);
    setup.append_messages("Archive", 4..=4, &[]);
    setup.sync();
    std::thread::sleep(std::time::Duration::from_millis(300));
    setup.sync(); // saves markers from a quiet state
    let last_sync = || -> u64 {
        let status = setup.ferry(&["status", "--json"]);
        let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
        let account = json.as_array().map_or(&json, |a| &a[0]);
        account["last_sync_ms"].as_u64().expect("last_sync_ms")
    };
    let before = last_sync();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let quiet = setup.ferry(&["sync", "-vv"]);
    assert!(
        last_sync() > before,
        "a skipping run still counts as a sync"
    );
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(
        quiet
            .stdout
            .contains("unchanged on both sides, not looked into: 2 folders"),
        "{quiet:?}"
    );
    assert_eq!(selects(&quiet), 0, "{quiet:?}");

    // A flag change on the server.
    let uids: Vec<u32> = (setup.dovecot.messages(USER, "INBOX").expect("messages"))
        .iter()
        .map(|m| m.uid)
        .collect();
    client
        .add_flags("INBOX", &uids[..1], &["\\Flagged"])
        .expect("flag");
    let run = setup.sync();
    assert!(
        run.stdout.contains("INBOX: pulled 0, pushed 0, flags 1"),
        "{run:?}"
    );
    // An expunge by another client.
    client.expunge("INBOX", &uids[1..2]).expect("expunge");
    let run = setup.sync();
    assert!(run.stdout.contains("deleted 1"), "{run:?}");
    assert_eq!(setup.files("INBOX").len(), 2);
    // A local flag change (a rename in cur/).
    std::thread::sleep(std::time::Duration::from_millis(300));
    setup.sync();
    setup.sync();
    let (key, _, path) = setup.files("Archive").remove(0);
    let cur = setup.maildir().join("Archive/cur");
    std::fs::rename(&path, cur.join(format!("{key}:2,S"))).expect("rename");
    let run = setup.sync();
    assert!(
        run.stdout.contains("Archive: pulled 0, pushed 0, flags 1"),
        "{run:?}"
    );
    // --full looks into everything.
    std::thread::sleep(std::time::Duration::from_millis(300));
    setup.sync();
    let full = setup.ferry(&["sync", "--full", "-vv"]);
    assert_eq!(full.code, 0, "{full:?}");
    assert!(!full.stdout.contains("not looked into"), "{full:?}");
    assert_eq!(selects(&full), 2, "{full:?}");
}

/// Without CONDSTORE, STATUS cannot show a flag change, and without
/// QRESYNC an expunge need not move HIGHESTMODSEQ: every folder is looked
/// into, and such changes are seen.
#[test]
fn without_qresync_every_folder_is_looked_into() {
    for options in [
        DovecotOptions::minimal(),
        DovecotOptions::hiding(&["QRESYNC"]),
    ] {
        let setup = Setup::new(options);
        setup.append_messages("INBOX", 1..=2, &[]);
        setup.sync();
        std::thread::sleep(std::time::Duration::from_millis(300));
        setup.sync();
        let quiet = setup.sync();
        assert!(!quiet.stdout.contains("not looked into"), "{quiet:?}");
        let uid = setup.dovecot.messages(USER, "INBOX").expect("messages")[0].uid;
        let mut client = setup.dovecot.client().expect("client");
        client
            .add_flags("INBOX", &[uid], &["\\Seen"])
            .expect("flag");
        let run = setup.sync();
        assert!(run.stdout.contains("flags 1"), "{run:?}");
    }
}

/// A folder skipped as unchanged was judged under the last run's settings:
/// after switching from `sync = "pull"` to both ways, the local message
/// that pull mode kept back is pushed, not left behind a skip.
#[test]
fn changed_settings_make_every_folder_looked_into_again() {
    let dovecot = ferry_testkit::Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let setup = Setup::with_extra(dovecot, "sync = \"pull\"\n");
    setup.append_messages("INBOX", 1..=1, &[]);
    let mut client = setup.dovecot.client().expect("client");
    client.create("Other").expect("create");
    drop(client);
    setup.sync();
    std::fs::write(
        setup.maildir().join("INBOX/cur/1700000300.M7P7.laptop:2,S"),
        "Message-ID: <kept@sync.test>\nSubject: written offline\n\nhi\n",
    )
    .expect("write");
    std::thread::sleep(std::time::Duration::from_millis(300));
    setup.sync();
    let quiet = setup.sync();
    assert!(
        quiet.stdout.contains("not looked into: 2 folders"),
        "{quiet:?}"
    );
    assert_eq!(setup.server_count("INBOX"), 1, "pull mode pushes nothing");
    let config = setup.home.path().join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("sync = \"pull\"\n", "")).expect("config");
    // A run over another folder only does not count as looking into all.
    let other = setup.ferry(&["sync", "--folder", "Other"]);
    assert_eq!(other.code, 0, "{other:?}");
    let run = setup.sync();
    assert!(run.stdout.contains("pushed 1"), "{run:?}");
    assert_eq!(setup.server_count("INBOX"), 2);

    // Back to "pull" for one folder, then back again: that folder's state
    // was written under "pull", so the next run looks into it anyway.
    std::fs::write(&config, &text).expect("config");
    std::fs::write(
        setup.maildir().join("INBOX/cur/1700000400.M8P8.laptop:2,S"),
        "Message-ID: <later@sync.test>\nSubject: written offline\n\nhi\n",
    )
    .expect("write");
    // Settled, so that this run's listing is proof of the folder.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pulled = setup.ferry(&["sync", "--folder", "INBOX"]);
    assert_eq!(pulled.code, 0, "{pulled:?}");
    std::fs::write(&config, text.replace("sync = \"pull\"\n", "")).expect("config");
    let run = setup.sync();
    assert!(run.stdout.contains("pushed 1"), "{run:?}");
    assert_eq!(setup.server_count("INBOX"), 3);
}

/// A folder that changed is read from its changes: QRESYNC's SELECT, else
/// CONDSTORE's CHANGEDSINCE, else the flags of all, and a UID SEARCH of what
/// is still there; never
/// again the headers and sizes of messages already paired. Each way,
/// another client's changes (flags, an expunge, a new message) and a local
/// one meet, and the next run finds nothing to do.
#[test]
fn changed_folders_are_read_from_their_changes() {
    let ways = [
        (
            DovecotOptions::default(),
            "SELECT INBOX (QRESYNC (",
            "CHANGEDSINCE",
        ),
        (
            DovecotOptions::hiding(&["QRESYNC"]),
            "(CHANGEDSINCE ",
            "QRESYNC",
        ),
        (
            DovecotOptions::minimal(),
            "UID FETCH 1:6 (UID FLAGS)\n",
            "CHANGEDSINCE",
        ),
    ];
    for (options, used, unused) in ways {
        let setup = Setup::new(options);
        setup.append_messages("INBOX", 1..=6, &["\\Seen"]);
        setup.sync();
        let uids: Vec<u32> = setup
            .dovecot
            .messages(USER, "INBOX")
            .expect("messages")
            .iter()
            .map(|m| m.uid)
            .collect();
        let mut client = setup.dovecot.client().expect("client");
        client
            .add_flags("INBOX", &[uids[0]], &["\\Flagged"])
            .expect("flag");
        client
            .remove_flags("INBOX", &[uids[1]], &["\\Seen"])
            .expect("unflag");
        client.expunge("INBOX", &[uids[2]]).expect("expunge");
        client
            .append("INBOX", &[], None, &message(7))
            .expect("append");
        let (_, _, path) = setup
            .files("INBOX")
            .into_iter()
            .find(|(_, _, path)| read_subject(path) == "message 4")
            .expect("message 4");
        let flagged = path.to_string_lossy().replace(":2,S", ":2,FS");
        std::fs::rename(&path, flagged).expect("flag locally");
        let run = setup.ferry(&["sync", "-vv"]);
        assert_eq!(run.code, 0, "{run:?}");
        let trace = format!("{}\n", run.stderr);
        assert!(trace.contains(used), "{used}: {run:?}");
        assert!(!trace.contains(unused), "{unused}: {run:?}");
        assert!(!trace.contains("UID FETCH 1:*"), "{run:?}");
        assert!(trace.contains("UID SEARCH UID 1:6\n"), "{run:?}");
        let header_fetches: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains(" C: ") && l.contains("HEADER.FIELDS"))
            .collect();
        assert_eq!(header_fetches.len(), 1, "{header_fetches:?}");
        assert!(header_fetches[0].contains("UID FETCH 7:* "), "{run:?}");
        let local: BTreeMap<String, String> = setup
            .files("INBOX")
            .into_iter()
            .map(|(_, info, path)| (read_subject(&path), info))
            .collect();
        let expected: BTreeMap<String, String> = [
            ("message 1", "FS"),
            ("message 2", ""),
            ("message 4", "FS"),
            ("message 5", "S"),
            ("message 6", "S"),
            ("message 7", ""),
        ]
        .into_iter()
        .map(|(s, i)| (s.to_string(), i.to_string()))
        .collect();
        assert_eq!(local, expected, "{run:?}");
        let server = setup.dovecot.messages(USER, "INBOX").expect("messages");
        assert_eq!(server.len(), 6);
        let fourth = server.iter().find(|m| m.uid == uids[3]).expect("4");
        assert!(
            fourth.flags.contains(&"\\Flagged".to_string()),
            "{server:?}"
        );
        let again = setup.sync();
        assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
    }
}

/// A pair kept after its server message was expunged (marked `T` locally,
/// as `expunge = "far"` says) stays known as gone on every later run,
/// though the server reports the expunge only once: when the local copy is
/// restored (`T` taken off), it goes back to the server, as a full look
/// would have it.
#[test]
fn a_message_expunged_on_the_server_and_restored_locally_is_uploaded_again() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let setup = Setup::with_extra(dovecot, "expunge = \"far\"\n");
    setup.append_messages("INBOX", 1..=3, &["\\Seen"]);
    setup.sync();
    let uid = setup.dovecot.messages(USER, "INBOX").expect("messages")[0].uid;
    let mut client = setup.dovecot.client().expect("client");
    client.expunge("INBOX", &[uid]).expect("expunge");
    let marked = setup.sync();
    assert!(marked.stdout.contains("deleted 1"), "{marked:?}");
    let trashed = |setup: &Setup| {
        setup
            .files("INBOX")
            .into_iter()
            .filter(|(_, info, _)| info.contains('T'))
            .map(|(_, _, path)| path)
            .collect::<Vec<_>>()
    };
    assert_eq!(trashed(&setup).len(), 1, "marked T locally");
    // Runs in between: the server no longer reports that expunge.
    std::thread::sleep(std::time::Duration::from_millis(300));
    setup.sync();
    setup.sync();
    let path = trashed(&setup).remove(0);
    let restored = path.to_string_lossy().replace(":2,ST", ":2,S");
    std::fs::rename(&path, restored).expect("restore");
    let run = setup.sync();
    assert!(run.stdout.contains("pushed 1"), "{run:?}");
    assert_eq!(setup.server_count("INBOX"), 3);
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

/// A message skipped because it arrived marked `\Deleted` is not in the
/// state; when another client takes the mark off later, the change is seen
/// (QRESYNC reports changes to every message, not only known ones) and the
/// message is downloaded.
#[test]
fn a_skipped_deleted_message_undeleted_later_is_downloaded() {
    for options in [
        DovecotOptions::default(),
        DovecotOptions::hiding(&["QRESYNC"]),
    ] {
        let setup = Setup::new(options);
        setup.append_messages("INBOX", 1..=2, &[]);
        setup.sync();
        setup.append_messages("INBOX", 3..=3, &["\\Deleted"]);
        setup.sync();
        assert_eq!(
            setup.files("INBOX").len(),
            2,
            "a deleted message is skipped"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        setup.sync();
        let uid = setup.dovecot.messages(USER, "INBOX").expect("messages")[2].uid;
        let mut client = setup.dovecot.client().expect("client");
        client
            .remove_flags("INBOX", &[uid], &["\\Deleted"])
            .expect("undelete");
        let run = setup.sync();
        assert!(run.stdout.contains("pulled 1"), "{run:?}");
        assert_eq!(setup.files("INBOX").len(), 3);
    }
}

/// After login, ENABLE, NAMESPACE and the folder listing go out together:
/// one round trip, not three, on every run.
#[test]
fn enable_namespace_and_the_listing_share_a_round_trip() {
    let setup = Setup::new(DovecotOptions::default());
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    let at = |needle: &str| run.stderr.lines().position(|l| l.contains(needle));
    let (Some(namespace), Some(list), Some(enabled)) = (
        at(" C: f3 NAMESPACE"),
        at(" C: f4 LIST \"\" \"*\" RETURN (STATUS"),
        at(" S: f2 OK"),
    ) else {
        panic!("no ENABLE/NAMESPACE/LIST exchange: {run:?}");
    };
    assert!(namespace < enabled, "NAMESPACE waited for ENABLE: {run:?}");
    assert!(list < enabled, "the listing waited for ENABLE: {run:?}");
}

/// Six folders with three messages each on the server, synced once.
fn six_synced_folders(setup: &Setup) -> Vec<String> {
    let folders: Vec<String> = (1..=6).map(|n| format!("F{n}")).collect();
    let mut client = setup.dovecot.client().expect("client");
    for folder in &folders {
        client.create(folder).expect("create");
    }
    drop(client);
    for folder in &folders {
        setup.append_messages(folder, 1..=3, &["\\Seen"]);
    }
    let first = setup.ferry(&["sync", "-vv"]);
    assert_eq!(first.code, 0, "{first:?}");
    folders
}

/// Flags every folder's first message on the server.
fn flag_first_messages(setup: &Setup, folders: &[String]) {
    let mut client = client_once_free(&setup.dovecot);
    for folder in folders {
        let uid = setup.dovecot.messages(USER, folder).expect("messages")[0].uid;
        client
            .add_flags(folder, &[uid], &["\\Flagged"])
            .expect("flag");
    }
}

/// A client, waiting while a server that allows one connection per user
/// still counts ferry's last one (ferry does not wait for the goodbye of
/// its LOGOUT, so the server may close it a moment after ferry exits).
fn client_once_free(dovecot: &Dovecot) -> ferry_testkit::client::Client {
    for _ in 0..100 {
        match dovecot.client() {
            Ok(client) => return client,
            Err(e) if e.to_string().contains("[LIMIT]") => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("client: {e}"),
        }
    }
    panic!("the server still refuses a connection after 5 s");
}

/// How many of `folders` hold a locally flagged message.
fn locally_flagged(setup: &Setup, folders: &[String]) -> usize {
    folders
        .iter()
        .filter(|f| setup.files(f).iter().any(|(_, info, _)| info.contains('F')))
        .count()
}

/// The connections a `-vv` trace shows (`C:` is the first, `C2:` the
/// second...), and those that selected a folder.
fn connections(trace: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut used = BTreeSet::new();
    let mut selecting = BTreeSet::new();
    for line in trace.lines() {
        let Some(rest) = line.split("ferry::protocol: ").nth(1) else {
            continue;
        };
        let Some((connection, command)) = rest.split_once(' ') else {
            continue;
        };
        if !connection.starts_with('C') {
            continue;
        }
        used.insert(connection.to_string());
        if command.contains(" SELECT ") {
            selecting.insert(connection.to_string());
        }
    }
    (used, selecting)
}

/// Whether a run recorded that the server refused it a connection.
fn refusal_recorded(setup: &Setup) -> bool {
    let state = setup.home.path().join("state");
    std::fs::read_dir(state).expect("state dir").any(|e| {
        e.expect("entry")
            .path()
            .extension()
            .is_some_and(|x| x == "refused")
    })
}

/// The helpers a run expects to need connect side by side, not one after
/// another: the second starts its login before the first is in (ENABLE
/// answered), which at 80 ms of round trip saves a login's worth of them.
#[test]
fn expected_helpers_connect_side_by_side() {
    let (setup, _proxy) = distant_setup(DovecotOptions::default(), 3);
    let folders = six_synced_folders(&setup);
    flag_first_messages(&setup, &folders);
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    let at = |needle: &str| run.stderr.lines().position(|l| l.contains(needle));
    let (Some(third_logs_in), Some(second_is_in)) = (at(" C3: f1 AUTHENTICATE"), at(" S2: f2 OK"))
    else {
        panic!("two helpers did not connect: {run:?}");
    };
    assert!(
        third_logs_in < second_is_in,
        "the helpers connected one after another: {run:?}"
    );
    assert_eq!(locally_flagged(&setup, &folders), 6, "{run:?}");
    assert!(
        !refusal_recorded(&setup),
        "a refusal recorded where none was"
    );
}

/// A server 80 ms of round trip away (so that helper connections are up
/// while the main one still works), and ferry set to `connections`.
fn distant_setup(options: DovecotOptions, connections: u32) -> (Setup, FaultProxy) {
    Setup::distant(options, &format!("connections = {connections}\n"))
}

/// Answers every folder's first message locally (a flag change to push).
fn answer_first_messages(setup: &Setup, folders: &[String]) {
    for folder in folders {
        let (_, _, path) = setup.files(folder).into_iter().next().expect("a file");
        let answered = path.to_string_lossy().replace(":2,S", ":2,RS");
        std::fs::rename(&path, answered).expect("answer locally");
    }
}

#[test]
fn changed_folders_are_listed_and_their_flags_pushed_on_several_connections() {
    let (setup, _proxy) = distant_setup(DovecotOptions::default(), 3);
    let folders = six_synced_folders(&setup);
    flag_first_messages(&setup, &folders);
    answer_first_messages(&setup, &folders);
    setup.append_messages("F3", 10..=10, &[]);
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (used, selecting) = connections(&run.stderr);
    assert!(
        used.contains("C2:") && used.contains("C3:"),
        "{used:?}: {run:?}"
    );
    assert!(!used.contains("C4:"), "at most 3 connections: {run:?}");
    assert!(selecting.len() > 1, "helpers worked: {selecting:?}");
    // Helpers list and push flags; transfers stay on the first.
    let helper_lines: Vec<&str> = (run.stderr.lines())
        .filter(|l| l.contains("ferry::protocol: C2: ") || l.contains("ferry::protocol: C3: "))
        .collect();
    assert!(
        !helper_lines
            .iter()
            .any(|l| l.contains("BODY.PEEK[]") || l.contains("APPEND") || l.contains("EXPUNGE")),
        "{helper_lines:#?}"
    );
    assert_eq!(locally_flagged(&setup, &folders), 6, "{run:?}");
    for folder in &folders {
        let server = setup.dovecot.messages(USER, folder).expect("messages");
        let answered = server
            .iter()
            .filter(|m| m.flags.iter().any(|f| f == "\\Answered"))
            .count();
        assert_eq!(answered, 1, "{folder}: {server:?}");
    }
    assert_eq!(setup.files("F3").len(), 4, "the new message arrived");
    let again = setup.ferry(&["sync", "-v"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

#[test]
fn one_connection_lists_every_folder_itself() {
    let (setup, _proxy) = distant_setup(DovecotOptions::default(), 1);
    let folders = six_synced_folders(&setup);
    flag_first_messages(&setup, &folders);
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (used, selecting) = connections(&run.stderr);
    assert_eq!(used.into_iter().collect::<Vec<_>>(), ["C:"], "{run:?}");
    assert_eq!(selecting.into_iter().collect::<Vec<_>>(), ["C:"], "{run:?}");
    assert_eq!(locally_flagged(&setup, &folders), 6, "{run:?}");
}

#[test]
fn a_server_allowing_fewer_connections_than_asked_is_synced_all_the_same() {
    // One connection per user: ferry's first takes it, every helper is
    // refused.
    let options = DovecotOptions {
        max_connections_per_user: 1,
        ..DovecotOptions::default()
    };
    let (setup, _proxy) = distant_setup(options, 8);
    let folders = six_synced_folders(&setup);
    // The first sync was refused its helpers, and remembers it: this run's
    // helpers connect one at a time, so the server refuses only one.
    assert!(refusal_recorded(&setup), "no refusal recorded");
    flag_first_messages(&setup, &folders);
    let run = setup.ferry(&["sync", "-vv"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("going on with fewer"), "{run:?}");
    let (used, selecting) = connections(&run.stderr);
    assert!(
        used.contains("C2:") && !used.contains("C3:"),
        "{used:?}: {run:?}"
    );
    assert_eq!(selecting.into_iter().collect::<Vec<_>>(), ["C:"], "{run:?}");
    assert_eq!(locally_flagged(&setup, &folders), 6, "{run:?}");
    let again = setup.ferry(&["sync", "-v"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
}

#[test]
fn the_state_directory_holds_only_private_files() {
    let setup = Setup::new(DovecotOptions::default());
    setup.append_messages("INBOX", 1..=2, &[]);
    let run = setup.sync();
    assert_eq!(run.code, 0, "{run:?}");
    let state = setup.home.path().join("state");
    let entries: Vec<PathBuf> = std::fs::read_dir(&state)
        .expect("state dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(
        entries
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "settings")),
        "{entries:?}"
    );
    for path in entries {
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
    }
}

#[test]
fn a_second_ferry_process_on_the_same_account_exits_at_once() {
    let (setup, _proxy) = distant_setup(DovecotOptions::default(), 1);
    let folders = six_synced_folders(&setup);
    flag_first_messages(&setup, &folders);
    let first = (setup.ferry_command(&[], &["sync", "-q"]))
        .spawn()
        .expect("ferry starts");
    let lock = setup.home.path().join("state/test.sqlite.lock");
    let holder = first.id().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != holder {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never locked"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let started = std::time::Instant::now();
    let second = setup.ferry(&["sync"]);
    assert_eq!(second.code, 75, "{second:?}");
    assert!(
        second.stderr.contains(&holder),
        "names the holder: {second:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "exits at once");
    let output = first.wait_with_output().expect("the first ends");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(locally_flagged(&setup, &folders), 6);
}
