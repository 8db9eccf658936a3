//! A lost or replaced state database is no request to delete anything
//! (design.md, "A folder that disappeared wholesale ... is an error, not a
//! request to delete everything"): without a trustworthy state, ferry
//! re-pairs both sides by Message-ID and size. A message that exists on
//! either side is kept, and copied to the other unless the state it was
//! given legitimately knew it was deleted; nothing is duplicated; a file
//! that is no state at all is a clear error; and the run after the
//! recovery has nothing to do.

mod support;

use ferry_testkit::{DovecotOptions, USER, USER2};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::{NOTHING_DONE, Setup, maildir_letters, message, message_id_of};

/// One side: folder -> sorted (Message-ID, flags as Maildir letters).
type Side = BTreeMap<String, Vec<(String, String)>>;

/// Both sides of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sides {
    far: Side,
    near: Side,
}

/// (folder, Message-ID) of the messages a state knew as synced pairs.
type Known = BTreeSet<(String, String)>;

/// An account with messages on both sides in three folders, synced once:
/// INBOX 1..=8, Archive 11..=16 (seen), Lists 21..=25; Lists also has a
/// message that only the Maildir had before (26).
fn synced_account() -> Setup {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    for folder in ["Archive", "Lists"] {
        client.create(folder).expect("create");
    }
    setup.append_messages("INBOX", 1..=8, &[]);
    setup.append_messages("Archive", 11..=16, &["\\Seen"]);
    setup.append_messages("Lists", 21..=25, &[]);
    setup.local_folder("Lists");
    write_local(&setup, "Lists", 26, "S");
    setup.sync();
    setup
}

/// Changes since the last sync on both sides, none synced yet: on the
/// server a message expunged, one flagged, one new; in the Maildir a file
/// removed, one marked seen, one new.
fn unsynced_changes(setup: &Setup) {
    let mut client = setup.dovecot.client().expect("client");
    client
        .expunge("INBOX", &[server_uid(setup, "INBOX", 1)])
        .expect("expunge");
    client
        .add_flags("INBOX", &[server_uid(setup, "INBOX", 2)], &["\\Flagged"])
        .expect("flag");
    client
        .append("Archive", &[], None, &message(40))
        .expect("append");
    std::fs::remove_file(local_file(setup, "INBOX", 3)).expect("rm");
    mark_seen(&local_file(setup, "INBOX", 4));
    write_local(setup, "Lists", 41, "");
}

/// The state database of the account.
fn state_db(setup: &Setup) -> PathBuf {
    setup.home.path().join("state/test.sqlite")
}

/// The UID of message `n` ([`message`]) in `folder` on the server.
fn server_uid(setup: &Setup, folder: &str, n: u32) -> u32 {
    let id = format!("<m{n}@sync.test>");
    let messages = setup.dovecot.messages(USER, folder).expect("messages");
    let found = messages.into_iter().find(|m| m.message_id == id);
    found.map(|m| m.uid).expect("on the server")
}

/// Writes message `n` as a mail reader would, into `folder`'s cur/ with
/// the Maildir `flags`.
fn write_local(setup: &Setup, folder: &str, n: u32, flags: &str) {
    let text: Vec<u8> = message(n).into_iter().filter(|&b| b != b'\r').collect();
    let name = format!("1700000{n:03}.M{n}P1.laptop:2,{flags}");
    let path = setup.maildir().join(folder).join("cur").join(name);
    std::fs::write(path, text).expect("write");
}

/// The local file of message `n` in `folder`.
fn local_file(setup: &Setup, folder: &str, n: u32) -> PathBuf {
    let id = format!("<m{n}@sync.test>");
    let files = setup.files(folder).into_iter().map(|(_, _, path)| path);
    files
        .into_iter()
        .find(|path| message_id_of(path) == id)
        .expect("local file")
}

/// Renames a local file into cur/ with the seen flag added.
fn mark_seen(path: &Path) {
    let name = path.file_name().expect("name").to_string_lossy();
    let (unique, info) = name.split_once(":2,").unwrap_or((&name, ""));
    let mut letters: Vec<char> = info.chars().chain(['S']).collect();
    letters.sort();
    letters.dedup();
    let info: String = letters.into_iter().collect();
    let cur = path.parent().expect("dir").with_file_name("cur");
    std::fs::rename(path, cur.join(format!("{unique}:2,{info}"))).expect("rename");
}

/// What both sides hold, by folder.
fn sides(setup: &Setup) -> Sides {
    let mut far = Side::new();
    for folder in setup
        .dovecot
        .client()
        .expect("client")
        .list()
        .expect("list")
    {
        let messages = setup.dovecot.messages(USER, &folder).expect("messages");
        let mut held: Vec<_> = messages
            .into_iter()
            .map(|m| (m.message_id, maildir_letters(&m.flags)))
            .collect();
        held.sort();
        far.insert(folder, held);
    }
    let mut near = Side::new();
    for entry in std::fs::read_dir(setup.maildir())
        .expect("maildir")
        .flatten()
    {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let files = setup.files(&folder).into_iter();
        let mut held: Vec<_> = files
            .map(|(_, i, path)| (message_id_of(&path), i))
            .collect();
        held.sort();
        near.insert(folder, held);
    }
    Sides { far, near }
}

/// Every (folder, Message-ID) present on both sides: what a state taken
/// now knows as pairs.
fn paired(sides: &Sides) -> Known {
    let ids = |side: &Side| -> Known {
        let each = side
            .iter()
            .flat_map(|(f, held)| held.iter().map(move |(id, _)| (f.clone(), id.clone())));
        each.collect()
    };
    ids(&sides.far)
        .intersection(&ids(&sides.near))
        .cloned()
        .collect()
}

/// What is wrong with `after`, the sides after a run that began with
/// `before` and a state that knew `known` as pairs: a message lost, one
/// duplicated or invented, the sides not the same. Empty when all is well.
fn problems(before: &Sides, known: &Known, after: &Sides) -> Vec<String> {
    let folders: BTreeSet<&String> = (before.far.keys().chain(before.near.keys())).collect();
    let mut out: Vec<String> = (folders.into_iter())
        .flat_map(|folder| folder_problems(folder, before, known, after))
        .collect();
    if after.far != after.near {
        out.push(format!("the sides differ:\n{}", show(after)));
    }
    out
}

/// [`problems`] in one folder.
fn folder_problems(folder: &str, before: &Sides, known: &Known, after: &Sides) -> Vec<String> {
    let ids = |side: &Side| -> Vec<String> {
        let held = side.get(folder).into_iter().flatten();
        held.map(|(id, _)| id.clone()).collect()
    };
    let (far, near) = (ids(&after.far), ids(&after.near));
    let mut out = Vec::new();
    for (side, list) in [("server", &far), ("maildir", &near)] {
        if list.iter().collect::<BTreeSet<_>>().len() != list.len() {
            out.push(format!("{folder}: duplicates on the {side}: {list:?}"));
        }
    }
    let (before_far, before_near) = (ids(&before.far), ids(&before.near));
    let anywhere: BTreeSet<&String> = before_far.iter().chain(&before_near).collect();
    for id in &anywhere {
        let on_both = before_far.contains(id) && before_near.contains(id);
        let deletable = !on_both && known.contains(&(folder.to_string(), id.to_string()));
        let kept = far.contains(id) && near.contains(id);
        if !deletable && !kept {
            out.push(format!(
                "{folder}: {id} lost (server {far:?}, maildir {near:?})"
            ));
        }
    }
    let invented = (far.iter().chain(&near)).filter(|id| !anywhere.contains(id));
    out.extend(invented.map(|id| format!("{folder}: {id} came from nowhere")));
    out
}

/// Both sides, a line per folder and side: `INBOX server: m1 m2:F ...`.
fn show(sides: &Sides) -> String {
    let mut out = String::new();
    for (name, side) in [("server", &sides.far), ("maildir", &sides.near)] {
        for (folder, held) in side {
            let each = held.iter().map(|(id, flags)| {
                let id = id.trim_start_matches('<').trim_end_matches("@sync.test>");
                match flags.is_empty() {
                    true => id.to_string(),
                    false => format!("{id}:{flags}"),
                }
            });
            let each: Vec<String> = each.collect();
            out.push_str(&format!("  {folder} {name}: {}\n", each.join(" ")));
        }
    }
    out
}

/// Runs the recovery sync with `known` as what the state legitimately
/// knew; checks that nothing is lost or duplicated and that the next run
/// has nothing to do.
fn recover(setup: &Setup, known: &Known) {
    let before = sides(setup);
    let run = setup.ferry(&["sync"]);
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    let after = sides(setup);
    let found = problems(&before, known, &after);
    assert!(
        found.is_empty(),
        "{}\nbefore:\n{}after:\n{}{run:?}",
        found.join("\n"),
        show(&before),
        show(&after)
    );
    assert_eq!(run.code, 0, "{run:?}");
    let again = setup.sync();
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}\n{run:?}");
    assert_eq!(sides(setup), after, "the next run changed nothing");
}

/// A way to lose the state of a [`Setup`].
type Lose = fn(&Setup);

/// (a) The state lost after a sync, with changes on both sides since: the
/// state directory deleted, or the database emptied (SQLite reads an empty
/// file as a new database). Everything is re-paired, nothing deleted.
#[test]
fn a_lost_state_re_pairs_everything_and_deletes_nothing() {
    let lose: [(&str, Lose); 2] = [
        ("the state directory deleted", |setup| {
            let dir = setup.home.path().join("state");
            std::fs::remove_dir_all(dir).expect("rm -r state");
        }),
        ("the database emptied", |setup| {
            std::fs::write(state_db(setup), b"").expect("truncate");
        }),
    ];
    for (what, lose) in lose {
        eprintln!("{what}");
        let setup = synced_account();
        unsynced_changes(&setup);
        lose(&setup);
        recover(&setup, &Known::new());
    }
}

/// The state's files as they are now (the database, and its WAL and
/// shared-memory files where a run left them): path and content.
fn save_state(setup: &Setup) -> Vec<(PathBuf, Vec<u8>)> {
    let db = state_db(setup);
    let files =
        ["", "-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())));
    let present = files.into_iter().filter(|path| path.exists());
    present
        .map(|path| (path.clone(), std::fs::read(&path).expect("read")))
        .collect()
}

/// Puts `saved` ([`save_state`]) back in place of the state's files.
fn restore_state(setup: &Setup, saved: &[(PathBuf, Vec<u8>)]) {
    let db = state_db(setup).display().to_string();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
    for (path, bytes) in saved {
        std::fs::write(path, bytes).expect("restore");
    }
}

/// Changes synced after the stale copy was taken: new messages and a new
/// folder on the server, a new message locally, removals and moves each
/// way, a flag.
fn synced_changes(setup: &Setup) {
    let mut client = setup.dovecot.client().expect("client");
    client
        .append("INBOX", &[], None, &message(50))
        .expect("append");
    client
        .expunge("INBOX", &[server_uid(setup, "INBOX", 6)])
        .expect("expunge");
    let m13 = server_uid(setup, "Archive", 13);
    client
        .move_messages("Archive", &[m13], "INBOX")
        .expect("move");
    client.create("Projects").expect("create");
    client
        .append("Projects", &[], None, &message(53))
        .expect("append");
    client
        .append("Projects", &[], None, &message(54))
        .expect("append");
    write_local(setup, "INBOX", 52, "");
    std::fs::remove_file(local_file(setup, "Archive", 12)).expect("rm");
    let m7 = local_file(setup, "INBOX", 7);
    let name = m7.file_name().expect("name").to_owned();
    std::fs::rename(&m7, setup.maildir().join("Archive/cur").join(name)).expect("mv");
    mark_seen(&local_file(setup, "INBOX", 8));
    let run = setup.sync();
    assert!(!run.stdout.contains(NOTHING_DONE), "{run:?}");
}

/// (b) The state replaced by a copy taken before a later sync (a restored
/// backup), with changes on both sides since that sync: what the copy
/// knew may be deleted where the other side deleted it; everything else
/// is kept on both sides, and nothing is duplicated.
#[test]
fn a_stale_state_copy_loses_nothing_it_did_not_know_was_deleted() {
    let setup = synced_account();
    let stale = save_state(&setup);
    let known = paired(&sides(&setup));
    synced_changes(&setup);
    unsynced_changes(&setup);
    let mut client = setup.dovecot.client().expect("client");
    let m50 = server_uid(&setup, "INBOX", 50);
    client.expunge("INBOX", &[m50]).expect("expunge");
    let m53 = server_uid(&setup, "Projects", 53);
    client.expunge("Projects", &[m53]).expect("expunge");
    std::fs::remove_file(local_file(&setup, "INBOX", 52)).expect("rm");
    std::fs::remove_file(local_file(&setup, "Archive", 7)).expect("rm");
    std::fs::remove_file(local_file(&setup, "Lists", 22)).expect("rm");
    restore_state(&setup, &stale);
    recover(&setup, &known);
}

/// A second account on its own server, synced: INBOX 101..=108, Archive
/// 111..=113, each folder's UIDVALIDITY `setup`'s of the same name plus
/// `offset` (every server numbers its UIDs from 1).
fn other_account(setup: &Setup, offset: u32) -> Setup {
    let other = Setup::new(DovecotOptions::default());
    let mut client = other.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    other.append_messages("INBOX", 101..=108, &[]);
    other.append_messages("Archive", 111..=113, &["\\Seen"]);
    for folder in ["INBOX", "Archive"] {
        let (validity, _, _) = setup.dovecot.mailbox_status(USER, folder).expect("status");
        let dovecot = &other.dovecot;
        dovecot
            .reset_uidvalidity(USER, folder, validity + offset)
            .expect("uidvalidity");
    }
    other.sync();
    other
}

/// (c) The state replaced by another account's, whose folders have other
/// UIDVALIDITYs: it knows nothing of this account's messages, so
/// everything is re-paired and nothing deleted.
#[test]
fn another_accounts_state_deletes_nothing() {
    let setup = synced_account();
    unsynced_changes(&setup);
    let other = other_account(&setup, 1000);
    std::fs::copy(state_db(&other), state_db(&setup)).expect("cp");
    recover(&setup, &Known::new());
}

/// (c) A state file that is no database (text, zeros) or a damaged one
/// (cut in half): the run stops with an error that names the file, before
/// changing anything on either side or in the file; once the file is moved
/// away, everything is re-paired.
#[test]
fn a_garbage_state_file_stops_the_run_and_changes_nothing() {
    let setup = synced_account();
    unsynced_changes(&setup);
    let db = state_db(&setup);
    let real = std::fs::read(&db).expect("read");
    let before = sides(&setup);
    for (what, garbage) in [
        ("text", b"not a database\n".repeat(300)),
        ("zeros", vec![0; 8192]),
        ("cut in half", real[..real.len() / 2].to_vec()),
    ] {
        std::fs::write(&db, &garbage).expect("write");
        let run = setup.ferry(&["sync"]);
        assert_eq!(run.code, 1, "{what}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{what}: {run:?}");
        let named = run.stderr.contains(&db.display().to_string());
        assert!(named, "{what}: the error names the file: {run:?}");
        let advised =
            run.stderr.contains("damaged: move") && run.stderr.contains("deleting nothing");
        assert!(advised, "{what}: the error says what to do: {run:?}");
        assert_eq!(sides(&setup), before, "{what}: nothing changed: {run:?}");
        assert_eq!(std::fs::read(&db).expect("read"), garbage, "{what}");
    }
    std::fs::rename(&db, db.with_extension("broken")).expect("mv");
    recover(&setup, &Known::new());
}

/// A config for a second account, `alice` on `setup`'s server, with its
/// own state directory and Maildir; returns the config file and its state
/// database.
fn alice_home(setup: &Setup, home: &Path) -> (PathBuf, PathBuf) {
    let config = format!(
        "state_dir = \"{root}/state\"\n[accounts.test]\nhost = \"127.0.0.1\"\nport = {port}\n\
         tls = \"implicit\"\nca_file = \"{ca}\"\nuser = \"{user}\"\npassword_env = \"FERRY_ALICE_PW\"\n\
         maildir = \"{root}/Mail\"\n",
        root = home.display(),
        port = setup.dovecot.imaps_port(),
        ca = setup.dovecot.cert_pem_path().display(),
        user = USER2.name,
    );
    let path = home.join("config.toml");
    std::fs::write(&path, config).expect("config");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (path, home.join("state/test.sqlite"))
}

/// (c) The state of another account, here alice's on the same server
/// (two accounts' names swapped in a config do the same): the run refuses
/// it, says whose it is and what to do, and changes nothing; once it is
/// moved away, everything is re-paired and nothing deleted.
#[test]
fn another_accounts_state_is_refused_for_what_it_is() {
    let setup = synced_account();
    let alice = tempfile::tempdir().expect("home");
    let (config, alice_db) = alice_home(&setup, alice.path());
    let mut client = setup.dovecot.client_as(USER2).expect("alice");
    for n in 201..=203 {
        client
            .append("INBOX", &[], None, &message(n))
            .expect("append");
    }
    let synced = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sync", "--config"])
        .arg(&config)
        .env("FERRY_ALICE_PW", USER2.password)
        .env_remove("FERRY_LOG")
        .output()
        .expect("ferry runs");
    assert!(synced.status.success(), "{synced:?}");
    unsynced_changes(&setup);
    let before = sides(&setup);
    std::fs::copy(&alice_db, state_db(&setup)).expect("cp");
    let run = setup.ferry(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("belongs to alice@127.0.0.1, not to ferry@127.0.0.1")
            && run.stderr.contains("move the file away"),
        "{run:?}"
    );
    assert_eq!(sides(&setup), before, "nothing changed: {run:?}");
    let db = state_db(&setup);
    std::fs::rename(&db, db.with_extension("alice")).expect("mv");
    recover(&setup, &Known::new());
}
