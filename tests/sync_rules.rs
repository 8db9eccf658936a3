//! The planner's rules end to end, both ways, through the `ferry` binary:
//!
//! - against a Dovecot that hides CONDSTORE, QRESYNC, MOVE, UIDPLUS and
//!   LIST-STATUS. Dovecot still executes hidden extensions, so every run
//!   is traced (`-vv`) and the trace is checked for their use;
//! - a 60 MiB message each way, compared byte for byte (modulo CRLF), with
//!   ferry's peak memory measured;
//! - another client changing flags while a sync is in flight.
//!
//! Every scenario ends with a sync that has nothing to do and a plan that
//! shows no action.

mod support;

use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};
use support::{NOTHING_DONE, Run, Setup, internal_dates, message, read_subject, save_from_file};

/// What the server of the rule tests does not advertise.
const HIDDEN: [&str; 5] = ["CONDSTORE", "QRESYNC", "MOVE", "UIDPLUS", "LIST-STATUS"];

/// The six flags that have a Maildir letter, as IMAP names, with their
/// letters in the same order.
const SIX_FLAGS: [&str; 6] = [
    "\\Draft",
    "\\Flagged",
    "$Forwarded",
    "\\Answered",
    "\\Seen",
    "\\Deleted",
];
const SIX_LETTERS: &str = "DFPRST";

fn bare_server() -> Setup {
    Setup::new(DovecotOptions::hiding(&HIDDEN))
}

/// `message(n)` as a Maildir file holds it: LF line endings.
fn lf(n: u32) -> Vec<u8> {
    message(n).into_iter().filter(|b| *b != b'\r').collect()
}

/// The commands ferry sent, from a `-vv` trace, each without the "C: "
/// (e.g. `f12 UID STORE 3 +FLAGS.SILENT (\Seen)`).
fn sent(run: &Out) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.contains("ferry::protocol"))
        .filter_map(|l| l.split_once(" C: ").map(|(_, c)| c.trim().to_string()))
        .collect()
}

/// The responses ferry read, from a `-vv` trace.
fn received(run: &Out) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.contains("ferry::protocol"))
        .filter_map(|l| l.split_once(" S: ").map(|(_, c)| c.trim().to_string()))
        .collect()
}

/// A finished run of ferry. Its Debug form (in failure messages) is
/// short: exit, stdout, ferry's own log lines and the commands it sent,
/// not the responses nor the TLS library's chatter of `-vv`.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Run> for Out {
    fn from(run: Run) -> Out {
        Out {
            code: run.code,
            stdout: run.stdout,
            stderr: run.stderr,
        }
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "exit {}\n--- stdout\n{}--- stderr (brief)",
            self.code, self.stdout
        )?;
        for line in self.stderr.lines() {
            let protocol = line.contains("ferry::protocol");
            let ours = line.contains(" ferry") || line.starts_with("ferry");
            if (protocol && line.contains(" C: ")) || (!protocol && ours) {
                writeln!(f, "{line}")?;
            }
        }
        Ok(())
    }
}

/// `ferry ARGS` on `setup`.
fn ferry(setup: &Setup, args: &[&str]) -> Out {
    setup.ferry(args).into()
}

/// The verb of a traced command: the word after the tag, two words for
/// `UID ...` commands (`UID STORE`), upper case.
fn verb(command: &str) -> String {
    let words: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect();
    match words.first().map(String::as_str) {
        Some("UID") => words.join(" "),
        Some(first) => first.to_string(),
        None => String::new(),
    }
}

fn verbs(run: &Out) -> Vec<String> {
    sent(run).iter().map(|c| verb(c)).collect()
}

/// The run's trace shows a real conversation that never used an extension
/// the server hid (nor plain EXPUNGE or CLOSE, which no correct client of
/// a server without UIDPLUS sends).
fn assert_no_hidden_extension(run: &Out) {
    let commands = sent(run);
    assert!(
        commands
            .iter()
            .any(|c| ["LOGIN", "AUTHENTICATE"].contains(&verb(c).as_str()))
            && commands.iter().any(|c| verb(c) == "LIST"),
        "no protocol trace (was -vv given?): {run:?}"
    );
    // The server really hides them (else this test proves nothing).
    for line in received(run)
        .iter()
        .filter(|l| l.to_ascii_uppercase().contains("CAPABILITY"))
    {
        let upper = line.to_ascii_uppercase();
        let caps: Vec<&str> = upper
            .split(|c: char| c.is_whitespace() || c == ']' || c == '[')
            .collect();
        for hidden in HIDDEN {
            assert!(!caps.contains(&hidden), "{hidden} advertised: {line}");
        }
    }
    let forbidden_verbs = ["MOVE", "UID MOVE", "UID EXPUNGE", "EXPUNGE", "CLOSE"];
    let forbidden_words = [
        "CHANGEDSINCE", // also UNCHANGEDSINCE
        "QRESYNC",
        "CONDSTORE",
        "MODSEQ",
        "VANISHED",
        "RETURN (STATUS",
    ];
    for command in &commands {
        let upper = command.to_ascii_uppercase();
        let verb = verb(command);
        assert!(
            !forbidden_verbs.contains(&verb.as_str()),
            "ferry sent {verb} to a server without it: {command}\n{}",
            commands.join("\n")
        );
        for word in forbidden_words {
            assert!(
                !upper.contains(word),
                "ferry used {word}, which the server does not advertise: {command}\n{}",
                commands.join("\n")
            );
        }
    }
}

/// `ferry ARGS -vv`, which must succeed without a hidden extension.
fn traced(setup: &Setup, args: &[&str]) -> Out {
    traced_if(setup, args, true)
}

/// [`traced`], checking for hidden extensions only when `hidden`.
fn traced_if(setup: &Setup, args: &[&str], hidden: bool) -> Out {
    let mut all = args.to_vec();
    all.push("-vv");
    let run = ferry(setup, &all);
    assert_eq!(run.code, 0, "{run:?}");
    if hidden {
        assert_no_hidden_extension(&run);
    }
    run
}

/// The lines of a plan below its header: its actions.
fn plan_actions(run: &Out) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| !l.starts_with("account ") && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Everything is in step: a sync does nothing (and changes nothing on the
/// server) and the plan shows no action.
fn assert_settled(setup: &Setup, traced_runs: bool) {
    let ferry = |args: &[&str]| {
        if traced_runs {
            traced(setup, args)
        } else {
            let mut all = args.to_vec();
            all.push("-vv");
            let run = ferry(setup, &all);
            assert_eq!(run.code, 0, "{run:?}");
            run
        }
    };
    let run = ferry(&["sync"]);
    assert!(run.stdout.contains(NOTHING_DONE), "not settled: {run:?}");
    for verb in verbs(&run) {
        assert!(
            ![
                "STORE",
                "UID STORE",
                "APPEND",
                "COPY",
                "UID COPY",
                "UID MOVE",
                "CREATE",
                "DELETE",
                "RENAME",
            ]
            .contains(&verb.as_str()),
            "a sync with nothing to do sent {verb}: {run:?}"
        );
    }
    let plan = ferry(&["plan"]);
    assert!(
        plan.stdout.starts_with("account test (plan only"),
        "{plan:?}"
    );
    let actions: Vec<String> = plan_actions(&plan)
        .into_iter()
        // A folder's heading ("  INBOX:"), printed only above its actions.
        .filter(|l| !l.ends_with(':') || l.starts_with("    "))
        .collect();
    assert!(
        actions.is_empty(),
        "the plan still has actions:\n{}",
        plan.stdout
    );
}

/// The counts of a sync's "total:" line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    pulled: u64,
    pushed: u64,
    flags: u64,
    moved: u64,
    deleted: u64,
}

fn totals(run: &Out) -> Totals {
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("total: "))
        .unwrap_or_else(|| panic!("no total line: {run:?}"));
    let count = |name: &str| -> u64 {
        line.split(", ")
            .find_map(|part| part.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    Totals {
        pulled: count("pulled "),
        pushed: count("pushed "),
        flags: count("flags "),
        moved: count("moved "),
        deleted: count("deleted "),
    }
}

/// A local file: its unique name, its info letters, its path.
#[derive(Debug, Clone)]
struct LocalFile {
    key: String,
    info: String,
    path: PathBuf,
}

/// The files of a local folder by subject; a subject found twice fails.
fn local_by_subject(setup: &Setup, folder: &str) -> BTreeMap<String, LocalFile> {
    let mut out = BTreeMap::new();
    for (key, info, path) in setup.files(folder) {
        let subject = read_subject(&path);
        let file = LocalFile { key, info, path };
        if let Some(other) = out.insert(subject.clone(), file.clone()) {
            panic!("{subject} twice in {folder}: {other:?} and {file:?}");
        }
    }
    out
}

/// The server's messages of `folder` by Message-ID: (UID, flags, GUID); a
/// Message-ID found twice fails.
fn server_by_id(setup: &Setup, folder: &str) -> BTreeMap<String, (u32, Vec<String>, String)> {
    let mut out = BTreeMap::new();
    for m in setup.dovecot.messages(USER, folder).expect("doveadm") {
        let all = (m.uid, m.flags.clone(), m.guid.clone());
        if let Some(other) = out.insert(m.message_id.clone(), all) {
            panic!(
                "{} twice on the server in {folder}: {other:?} and {m:?}",
                m.message_id
            );
        }
    }
    out
}

fn id(n: u32) -> String {
    format!("<m{n}@sync.test>")
}

fn subject(n: u32) -> String {
    format!("message {n}")
}

fn sorted(flags: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    v.sort();
    v
}

fn mtime(path: &Path) -> i64 {
    std::fs::metadata(path).expect("stat").mtime()
}

/// Writes a local message as a mail reader would, with mtime `date`.
fn write_local(setup: &Setup, folder: &str, name: &str, content: &[u8], date: i64) -> PathBuf {
    setup.local_folder(folder);
    let sub = if name.contains(":2,") { "cur" } else { "new" };
    let path = setup.maildir().join(folder).join(sub).join(name);
    std::fs::write(&path, content).expect("write local message");
    let when = UNIX_EPOCH + Duration::from_secs(date.try_into().expect("positive"));
    std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_modified(when)
        .expect("set mtime");
    path
}

/// Renames a local file to carry `letters` (in `cur/`), as mutt does.
fn set_local_letters(file: &LocalFile, letters: &str) -> PathBuf {
    let folder = file
        .path
        .parent()
        .and_then(Path::parent)
        .expect("folder dir");
    let target = folder.join("cur").join(format!("{}:2,{letters}", file.key));
    std::fs::rename(&file.path, &target).expect("rename");
    target
}

// ---------------------------------------------------------------------
// 1. The planner's rules against a server without the extensions.
// ---------------------------------------------------------------------

/// New messages both ways: flags and the internal date (the file's mtime)
/// travel with them.
#[test]
fn new_messages_both_ways_keep_flags_and_dates_without_extensions() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    client
        .append(
            "INBOX",
            &["\\Seen", "\\Flagged"],
            Some(1_700_000_000),
            &message(1),
        )
        .expect("append");
    client
        .append(
            "INBOX",
            &["\\Answered", "$Forwarded", "\\Draft"],
            Some(1_650_000_000),
            &message(2),
        )
        .expect("append");
    write_local(
        &setup,
        "INBOX",
        "1600000000.M1P1.laptop:2,FR",
        &lf(3),
        1_600_000_000,
    );
    write_local(
        &setup,
        "INBOX",
        "1600000500.M2P2.laptop",
        &lf(4),
        1_600_000_500,
    );

    let run = traced(&setup, &["sync"]);
    assert!(
        run.stdout.contains("total: pulled 2, pushed 2, flags 0"),
        "{run:?}"
    );
    assert_eq!(
        verbs(&run).iter().filter(|v| *v == "APPEND").count(),
        2,
        "{run:?}"
    );

    // Far -> near: letters and mtime.
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(local.len(), 4, "{local:?}");
    let one = &local[&subject(1)];
    assert_eq!(one.info, "FS", "{one:?}");
    assert_eq!(mtime(&one.path), 1_700_000_000);
    assert_eq!(std::fs::read(&one.path).expect("read"), lf(1));
    let two = &local[&subject(2)];
    assert_eq!(two.info, "DPR", "{two:?}");
    assert_eq!(mtime(&two.path), 1_650_000_000);
    // The local files keep their names.
    assert_eq!(local[&subject(3)].key, "1600000000.M1P1.laptop");
    assert_eq!(local[&subject(4)].key, "1600000500.M2P2.laptop");

    // Near -> far: flags, INTERNALDATE and the CRLF size.
    let server = server_by_id(&setup, "INBOX");
    assert_eq!(server.len(), 4, "{server:?}");
    assert_eq!(server[&id(3)].1, sorted(&["\\Answered", "\\Flagged"]));
    assert!(server[&id(4)].1.is_empty(), "{server:?}");
    let dates: BTreeMap<u32, i64> = internal_dates(&setup.dovecot, "INBOX")
        .into_iter()
        .collect();
    assert_eq!(dates[&server[&id(3)].0], 1_600_000_000);
    assert_eq!(dates[&server[&id(4)].0], 1_600_000_500);
    let sizes: BTreeMap<String, u64> = setup
        .dovecot
        .messages(USER, "INBOX")
        .expect("read")
        .into_iter()
        .map(|m| (m.message_id, m.size))
        .collect();
    assert_eq!(sizes[&id(3)], message(3).len() as u64, "CRLF on the server");

    assert_settled(&setup, true);
    assert_eq!(setup.files("INBOX").len(), 4);
}

/// Every letter both ways, set and cleared: `D F P R S T` <-> `\Draft
/// \Flagged $Forwarded \Answered \Seen \Deleted`.
#[test]
fn every_flag_changes_both_ways_without_extensions() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    setup.append_messages("INBOX", 1..=2, &[]);
    traced(&setup, &["sync"]);
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(local[&subject(1)].info, "");
    let uid1 = server_by_id(&setup, "INBOX")[&id(1)].0;

    // Set: all six on the server on message 1, all six letters locally on
    // message 2.
    client
        .add_flags("INBOX", &[uid1], &SIX_FLAGS)
        .expect("flags");
    set_local_letters(&local[&subject(2)], SIX_LETTERS);
    let run = traced(&setup, &["sync"]);
    assert!(run.stdout.contains("flags 2"), "{run:?}");
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(local[&subject(1)].info, SIX_LETTERS, "{run:?}");
    assert_eq!(local[&subject(2)].info, SIX_LETTERS, "{run:?}");
    let server = server_by_id(&setup, "INBOX");
    assert_eq!(server[&id(1)].1, sorted(&SIX_FLAGS), "{run:?}");
    assert_eq!(server[&id(2)].1, sorted(&SIX_FLAGS), "{run:?}");
    assert_settled(&setup, true);

    // Clear: all six on the server on message 1, all letters locally on
    // message 2.
    client
        .remove_flags("INBOX", &[uid1], &SIX_FLAGS)
        .expect("flags");
    set_local_letters(&local[&subject(2)], "");
    let run = traced(&setup, &["sync"]);
    assert!(run.stdout.contains("flags 2"), "{run:?}");
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(local[&subject(1)].info, "", "{run:?}");
    assert_eq!(local[&subject(2)].info, "", "{run:?}");
    let server = server_by_id(&setup, "INBOX");
    assert!(server[&id(1)].1.is_empty(), "{run:?}");
    assert!(server[&id(2)].1.is_empty(), "{run:?}");
    assert_settled(&setup, true);

    // One letter at a time, alternating sides. (A change that only adds
    // \Deleted is counted as "deleted" in the summary, not as "flags".)
    for (i, letter) in SIX_LETTERS.chars().enumerate() {
        let flag = SIX_FLAGS[i];
        let local = local_by_subject(&setup, "INBOX");
        let uid2 = server_by_id(&setup, "INBOX")[&id(2)].0;
        set_local_letters(&local[&subject(1)], &letter.to_string());
        client.add_flags("INBOX", &[uid2], &[flag]).expect("flag");
        let run = traced(&setup, &["sync"]);
        let t = totals(&run);
        assert_eq!(t.flags + t.deleted, 2, "{letter}: {run:?}");
        assert_eq!((t.pulled, t.pushed, t.moved), (0, 0, 0), "{run:?}");
        let server = server_by_id(&setup, "INBOX");
        let local = local_by_subject(&setup, "INBOX");
        assert_eq!(server[&id(1)].1, [flag], "{letter}: {run:?}");
        assert!(server[&id(2)].1.contains(&flag.to_string()), "{run:?}");
        assert_eq!(local[&subject(2)].info, letter.to_string(), "{run:?}");
        assert_eq!(local[&subject(1)].info, letter.to_string(), "{run:?}");
        // And back.
        set_local_letters(&local[&subject(1)], "");
        client
            .remove_flags("INBOX", &[uid2], &[flag])
            .expect("flag");
        let run = traced(&setup, &["sync"]);
        let t = totals(&run);
        assert_eq!(
            (t.pulled, t.pushed, t.flags, t.moved, t.deleted),
            (0, 0, 2, 0, 0),
            "{letter}: {run:?}"
        );
        let server = server_by_id(&setup, "INBOX");
        assert!(server[&id(1)].1.is_empty(), "{letter}: {run:?}");
        assert!(server[&id(2)].1.is_empty(), "{letter}: {run:?}");
        let local = local_by_subject(&setup, "INBOX");
        assert_eq!(local[&subject(1)].info, "", "{letter}: {run:?}");
        assert_eq!(local[&subject(2)].info, "", "{letter}: {run:?}");
    }
    assert_settled(&setup, true);
}

/// A keyword (a flag without a Maildir letter: `$Label1`, `$Junk`, a
/// Thunderbird tag) that is on the server is kept there: on messages
/// downloaded with it, set later by another client, and across local flag
/// changes of the same message.
#[test]
fn keywords_on_the_server_are_kept_without_extensions() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    client
        .append("INBOX", &["$Label1"], None, &message(1))
        .expect("append");
    client
        .append("INBOX", &[], None, &message(2))
        .expect("append");
    traced(&setup, &["sync"]);
    let uid2 = server_by_id(&setup, "INBOX")[&id(2)].0;
    client
        .add_flags("INBOX", &[uid2], &["$Label2"])
        .expect("another client tags it");
    traced(&setup, &["sync"]);
    let local = local_by_subject(&setup, "INBOX");
    set_local_letters(&local[&subject(1)], "S");
    set_local_letters(&local[&subject(2)], "F");
    let run = traced(&setup, &["sync"]);
    let server = server_by_id(&setup, "INBOX");
    assert_eq!(server[&id(1)].1, sorted(&["$Label1", "\\Seen"]), "{run:?}");
    assert_eq!(
        server[&id(2)].1,
        sorted(&["$Label2", "\\Flagged"]),
        "{run:?}"
    );
    assert_settled(&setup, true);
    let server = server_by_id(&setup, "INBOX");
    assert_eq!(server[&id(1)].1, sorted(&["$Label1", "\\Seen"]));
    assert_eq!(server[&id(2)].1, sorted(&["$Label2", "\\Flagged"]));
}

/// Deleted on one side, removed on the other; without UIDPLUS a message
/// removed locally stays on the server marked \Deleted and is not
/// downloaded again.
#[test]
fn deletions_flow_both_ways_and_stay_marked_deleted_without_uidplus() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    setup.append_messages("INBOX", 1..=3, &[]);
    traced(&setup, &["sync"]);
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(local.len(), 3);
    std::fs::remove_file(&local[&subject(1)].path).expect("rm locally");
    let uid2 = server_by_id(&setup, "INBOX")[&id(2)].0;
    client
        .expunge("INBOX", &[uid2])
        .expect("expunged elsewhere");

    let run = traced(&setup, &["sync"]);
    assert!(run.stdout.contains("deleted 2"), "{run:?}");
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(local.keys().collect::<Vec<_>>(), [&subject(3)], "{run:?}");
    let server = server_by_id(&setup, "INBOX");
    assert_eq!(server.len(), 2, "only marked, not expunged: {server:?}");
    assert_eq!(server[&id(1)].1, ["\\Deleted"], "{server:?}");
    assert!(server[&id(3)].1.is_empty(), "{server:?}");
    assert!(
        sent(&run)
            .iter()
            .any(|c| verb(c) == "UID STORE" && c.contains("+FLAGS") && c.contains("\\Deleted")),
        "{run:?}"
    );

    // Not downloaded again, neither now nor later.
    assert_settled(&setup, true);
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        [&subject(3)],
        "downloaded again"
    );
    assert_eq!(
        server_by_id(&setup, "INBOX")[&id(1)].1,
        ["\\Deleted"],
        "still marked"
    );
}

/// Without UIDPLUS, what ferry removed (or moved away) on the server stays
/// there marked \Deleted until another client expunges it. design.md:
/// such messages "are recorded as awaiting expunge (never downloaded
/// again)"; `ferry status` has a line for them. They are ferry's own
/// leftovers, not messages to skip again on every run.
#[test]
fn messages_ferry_removed_without_uidplus_await_expunge_out_of_the_plan() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    setup.append_messages("INBOX", 1..=3, &[]);
    traced(&setup, &["sync"]);
    let local = local_by_subject(&setup, "INBOX");
    std::fs::remove_file(&local[&subject(1)].path).expect("rm");
    let two = &local[&subject(2)];
    std::fs::rename(
        &two.path,
        setup
            .maildir()
            .join("Archive/cur")
            .join(two.path.file_name().expect("name")),
    )
    .expect("mv");
    traced(&setup, &["sync"]);
    let server = server_by_id(&setup, "INBOX");
    assert!(server[&id(1)].1.contains(&"\\Deleted".to_string()));
    assert!(server[&id(2)].1.contains(&"\\Deleted".to_string()));

    let run = traced(&setup, &["sync"]);
    assert!(!run.stdout.contains("not copied"), "{run:?}");
    let status = ferry(&setup, &["status"]);
    assert!(
        status
            .stdout
            .contains("2 removed but awaiting expunge on the server"),
        "{status:?}"
    );
    assert_settled(&setup, true);
}

/// Moves out of several folders are made side by side over the helper
/// connections where the server has MOVE. Without it a move is COPY, STORE
/// and EXPUNGE, which a broken helper connection could leave half done and
/// a retry would copy again: those stay on the first connection.
#[test]
fn moves_out_of_several_folders_use_the_helpers_only_with_move() {
    let folders = ["A", "B", "C"];
    for hidden in [&[][..], &["MOVE"][..]] {
        let setup = Setup::new(DovecotOptions::hiding(hidden));
        let mut client = setup.dovecot.client().expect("client");
        for (n, folder) in (1..).zip(folders) {
            client.create(folder).expect("create");
            client
                .append(folder, &["\\Seen"], None, &message(n))
                .expect("append");
        }
        drop(client);
        traced_if(&setup, &["sync"], false);
        // Each folder's message moves locally to the next folder.
        for (n, (folder, next)) in (1..).zip(folders.iter().zip(folders.iter().cycle().skip(1))) {
            let file = local_by_subject(&setup, folder)[&subject(n)].clone();
            let name = file.path.file_name().expect("name").to_owned();
            let to = setup.maildir().join(next).join("cur").join(&name);
            std::fs::rename(&file.path, to).expect("mv");
        }
        let run = traced_if(&setup, &["sync"], false);
        assert!(run.stdout.contains("moved 1"), "{run:?}");
        let on_helpers = run
            .stderr
            .lines()
            .filter(|l| l.contains("protocol: C") && !l.contains("protocol: C: "))
            .filter(|l| l.contains("UID MOVE") || l.contains("UID COPY"))
            .count();
        match hidden.is_empty() {
            true => assert!(on_helpers > 0, "no move on a helper: {run:?}"),
            false => assert_eq!(on_helpers, 0, "a COPY on a helper: {run:?}"),
        }
        for (n, next) in (1..).zip(folders.iter().cycle().skip(1)).take(3) {
            let there = server_by_id(&setup, next);
            assert!(there.contains_key(&id(n)), "{next}: {there:?}");
        }
        assert_settled(&setup, false);
    }
}

/// A local `mv` between folders is a server move (the same message, no
/// APPEND), and a server move is a local rename (same inode, no download).
#[test]
fn moves_flow_both_ways_without_move_or_uidplus() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    client
        .append("INBOX", &["\\Seen"], None, &message(1))
        .expect("append");
    client
        .append("INBOX", &[], None, &message(2))
        .expect("append");
    client
        .append("Archive", &["\\Flagged"], None, &message(3))
        .expect("append");
    traced(&setup, &["sync"]);

    // Local move INBOX -> Archive, same file name.
    let guid1 = server_by_id(&setup, "INBOX")[&id(1)].2.clone();
    let one = local_by_subject(&setup, "INBOX")[&subject(1)].clone();
    let name = one.path.file_name().expect("name").to_owned();
    std::fs::rename(&one.path, setup.maildir().join("Archive/cur").join(&name)).expect("mv");
    let run = traced(&setup, &["sync"]);
    assert!(run.stdout.contains("moved 1"), "{run:?}");
    let commands = verbs(&run);
    assert!(
        commands.iter().any(|v| v == "UID COPY"),
        "COPY without MOVE: {run:?}"
    );
    assert!(
        !commands.iter().any(|v| v == "APPEND"),
        "moved, not uploaded: {run:?}"
    );
    let archive = server_by_id(&setup, "Archive");
    assert_eq!(archive.len(), 2, "{archive:?}");
    assert_eq!(archive[&id(1)].1, ["\\Seen"], "{archive:?}");
    assert_eq!(
        archive[&id(1)].2,
        guid1,
        "the server's own message, not an upload"
    );
    let inbox = server_by_id(&setup, "INBOX");
    assert_eq!(
        inbox[&id(1)].1,
        sorted(&["\\Deleted", "\\Seen"]),
        "the original stays \\Deleted without UIDPLUS: {inbox:?}"
    );
    let local_inbox = local_by_subject(&setup, "INBOX");
    assert_eq!(local_inbox.keys().collect::<Vec<_>>(), [&subject(2)]);
    assert_settled(&setup, true);

    // Server move Archive -> INBOX (another client): a local rename.
    let three = local_by_subject(&setup, "Archive")[&subject(3)].clone();
    let inode = std::fs::metadata(&three.path).expect("stat").ino();
    let uid3 = server_by_id(&setup, "Archive")[&id(3)].0;
    client
        .move_messages("Archive", &[uid3], "INBOX")
        .expect("the phone moves it");
    let run = traced(&setup, &["sync"]);
    assert!(run.stdout.contains("moved 1"), "{run:?}");
    assert!(
        !sent(&run).iter().any(|c| c.contains("BODY.PEEK[]")),
        "no body downloaded: {run:?}"
    );
    let local_inbox = local_by_subject(&setup, "INBOX");
    let moved = &local_inbox[&subject(3)];
    assert_eq!(moved.key, three.key, "same file name");
    assert_eq!(moved.info, "F");
    assert_eq!(
        std::fs::metadata(&moved.path).expect("stat").ino(),
        inode,
        "renamed, not downloaded again"
    );
    assert!(!local_by_subject(&setup, "Archive").contains_key(&subject(3)));
    assert_settled(&setup, true);
}

/// A folder made on either side (with mail, empty, nested, non-ASCII) is
/// made on the other.
#[test]
fn folders_are_created_both_ways_without_extensions() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    client.create("Projects/2024").expect("create");
    client.create("Far Empty").expect("create");
    client.create("Entw&APw-rfe").expect("create"); // "Entwürfe"
    client
        .append("Projects/2024", &["\\Seen"], None, &message(1))
        .expect("append");
    write_local(
        &setup,
        "Lists/rust",
        "1700000000.M1P1.laptop:2,S",
        &lf(2),
        1_700_000_000,
    );
    setup.local_folder("Near Empty");
    write_local(
        &setup,
        "Bücher",
        "1700000001.M2P2.laptop:2,S",
        &lf(3),
        1_700_000_001,
    );

    let run = traced(&setup, &["sync"]);
    assert!(run.stdout.contains("total: pulled 1, pushed 2"), "{run:?}");
    let creates: Vec<String> = sent(&run)
        .into_iter()
        .filter(|c| verb(c) == "CREATE")
        .collect();
    assert_eq!(creates.len(), 3, "{creates:?}");
    let folders = client.list().expect("list");
    for name in [
        "Lists/rust",
        "Near Empty",
        "B&APw-cher",
        "Projects/2024",
        "Far Empty",
        "Entw&APw-rfe",
    ] {
        assert!(
            folders.iter().any(|f| f == name),
            "{name} not on the server: {folders:?}"
        );
    }
    assert!(server_by_id(&setup, "Lists/rust").contains_key(&id(2)));
    // doveadm names folders in UTF-8.
    assert!(server_by_id(&setup, "Bücher").contains_key(&id(3)));
    assert!(
        setup.maildir().join("Entwürfe/cur").is_dir(),
        "{:?}",
        std::fs::read_dir(setup.maildir())
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    assert_eq!(
        local_by_subject(&setup, "Projects/2024")[&subject(1)].info,
        "S"
    );
    for sub in ["cur", "new", "tmp"] {
        assert!(
            setup.maildir().join("Far Empty").join(sub).is_dir(),
            "Far Empty/{sub} not made locally"
        );
    }
    assert_settled(&setup, true);
}

/// Deleted on one side and changed on the other (flags, or moved to
/// another folder): the change wins, the message is kept on both sides
/// with the change; a deletion of an unchanged message still goes through.
#[test]
fn a_change_wins_over_a_deletion_both_ways_without_extensions() {
    change_wins_over_deletion(bare_server(), true);
}

/// The same with every extension (QRESYNC listings, UID MOVE, UIDPLUS: a
/// local deletion is expunged).
#[test]
fn a_change_wins_over_a_deletion_both_ways_with_every_extension() {
    change_wins_over_deletion(Setup::new(DovecotOptions::default()), false);
}

fn change_wins_over_deletion(setup: Setup, hidden: bool) {
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    setup.append_messages("INBOX", 1..=6, &[]);
    traced_if(&setup, &["sync"], hidden);
    let local = local_by_subject(&setup, "INBOX");
    let server = server_by_id(&setup, "INBOX");
    // 1: deleted locally, flagged on the server.
    std::fs::remove_file(&local[&subject(1)].path).expect("rm");
    client
        .add_flags("INBOX", &[server[&id(1)].0], &["\\Flagged"])
        .expect("flag");
    // 2: expunged on the server, read locally.
    client
        .expunge("INBOX", &[server[&id(2)].0])
        .expect("expunge");
    let two = set_local_letters(&local[&subject(2)], "S");
    // 3: deleted locally, unchanged on the server; 4: the other way.
    std::fs::remove_file(&local[&subject(3)].path).expect("rm");
    client
        .expunge("INBOX", &[server[&id(4)].0])
        .expect("expunge");
    // 5: deleted locally, moved to Archive on the server.
    std::fs::remove_file(&local[&subject(5)].path).expect("rm");
    client
        .move_messages("INBOX", &[server[&id(5)].0], "Archive")
        .expect("move");
    // 6: expunged on the server, moved to Archive locally.
    client
        .expunge("INBOX", &[server[&id(6)].0])
        .expect("expunge");
    let six = &local[&subject(6)];
    let six_moved = setup
        .maildir()
        .join("Archive/cur")
        .join(six.path.file_name().expect("name"));
    std::fs::rename(&six.path, &six_moved).expect("mv");

    let run = traced_if(&setup, &["sync"], hidden);
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(
        local.keys().cloned().collect::<Vec<_>>(),
        [subject(1), subject(2)],
        "{run:?}"
    );
    assert_eq!(local[&subject(1)].info, "F", "{run:?}");
    assert_eq!(local[&subject(2)].info, "S", "{run:?}");
    assert_eq!(local[&subject(2)].path, two, "the local file is kept");
    let local_archive = local_by_subject(&setup, "Archive");
    assert_eq!(
        local_archive.keys().cloned().collect::<Vec<_>>(),
        [subject(5), subject(6)],
        "{run:?}"
    );
    assert_eq!(local_archive[&subject(6)].path, six_moved);
    let server = server_by_id(&setup, "INBOX");
    // Without UIDPLUS the locally deleted 3 stays marked \Deleted.
    let kept: &[u32] = if hidden { &[1, 2, 3] } else { &[1, 2] };
    assert_eq!(
        server.keys().cloned().collect::<Vec<_>>(),
        kept.iter().map(|&n| id(n)).collect::<Vec<_>>(),
        "{run:?}"
    );
    assert_eq!(server[&id(1)].1, ["\\Flagged"], "kept: {run:?}");
    assert_eq!(server[&id(2)].1, ["\\Seen"], "back on the server: {run:?}");
    if hidden {
        assert_eq!(server[&id(3)].1, ["\\Deleted"], "{run:?}");
    }
    let server_archive = server_by_id(&setup, "Archive");
    assert_eq!(
        server_archive.keys().cloned().collect::<Vec<_>>(),
        [id(5), id(6)],
        "{run:?}"
    );
    assert_settled(&setup, hidden);
}

/// A move on one side with a flag change on either side is still one move,
/// and the flags merge: the phone flags a message and moves it while it
/// is answered locally; a message moved locally is marked unread on the
/// server meanwhile.
#[test]
fn a_move_with_flag_changes_is_one_move_and_keeps_every_change_without_extensions() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    setup.append_messages("INBOX", 1..=2, &["\\Seen"]);
    traced(&setup, &["sync"]);
    let local = local_by_subject(&setup, "INBOX");
    let server = server_by_id(&setup, "INBOX");
    // 1: moved locally, unread on the server meanwhile.
    let one = &local[&subject(1)];
    std::fs::rename(
        &one.path,
        setup
            .maildir()
            .join("Archive/cur")
            .join(one.path.file_name().expect("name")),
    )
    .expect("mv");
    client
        .remove_flags("INBOX", &[server[&id(1)].0], &["\\Seen"])
        .expect("unread");
    // 2: flagged and moved on the server, answered locally meanwhile.
    let moved = client
        .move_messages("INBOX", &[server[&id(2)].0], "Archive")
        .expect("move");
    let new_uid = moved.first().map(|(_, new)| *new).expect("COPYUID");
    client
        .add_flags("Archive", &[new_uid], &["\\Flagged"])
        .expect("flag");
    set_local_letters(&local[&subject(2)], "RS");

    let run = traced(&setup, &["sync"]);
    assert_eq!(totals(&run).moved, 2, "{run:?}");
    assert!(
        !verbs(&run).iter().any(|v| v == "APPEND"),
        "moved, not uploaded: {run:?}"
    );
    let second = traced(&setup, &["sync"]);
    assert_moved_with_flags(
        &setup,
        &[
            (1, "", &[]),
            (2, "FRS", &["\\Answered", "\\Flagged", "\\Seen"]),
        ],
        &[&run, &second],
    );
    assert_settled(&setup, true);
}

/// mutt: reply to a message (R) and save it to another folder, offline.
/// On a server without MOVE and UIDPLUS the move is COPY + \Deleted and
/// the copy's UID is not reported; the reply's \Answered must still reach
/// the copy, and stay on the local file.
#[test]
fn a_local_move_with_a_local_flag_change_keeps_the_change_without_uidplus() {
    let setup = bare_server();
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    client
        .append("INBOX", &["\\Seen"], None, &message(1))
        .expect("append");
    traced(&setup, &["sync"]);
    let one = local_by_subject(&setup, "INBOX")[&subject(1)].clone();
    std::fs::rename(
        &one.path,
        setup
            .maildir()
            .join("Archive/cur")
            .join(format!("{}:2,RS", one.key)),
    )
    .expect("mutt replies and saves it");
    let run = traced(&setup, &["sync"]);
    assert_eq!(totals(&run).moved, 1, "{run:?}");
    let second = traced(&setup, &["sync"]);
    assert_moved_with_flags(
        &setup,
        &[(1, "RS", &["\\Answered", "\\Seen"])],
        &[&run, &second],
    );
    assert_settled(&setup, true);
}

/// Messages `(n, local letters, server flags)` are in Archive on both
/// sides with those flags, and no longer in the local INBOX.
fn assert_moved_with_flags(setup: &Setup, expected: &[(u32, &str, &[&str])], runs: &[&Out]) {
    let local = local_by_subject(setup, "Archive");
    let server = server_by_id(setup, "Archive");
    let mut wrong = Vec::new();
    for (n, letters, flags) in expected {
        match local.get(&subject(*n)) {
            Some(file) if file.info == *letters => {}
            other => wrong.push(format!("local {n}: {other:?}, expected {letters:?}")),
        }
        match server.get(&id(*n)) {
            Some((_, got, _)) if *got == sorted(flags) => {}
            other => wrong.push(format!("server {n}: {other:?}, expected {flags:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n--- the runs:\n{runs:#?}",
        wrong.join("\n")
    );
    assert!(local_by_subject(setup, "INBOX").is_empty());
    for (_, flags, _) in server_by_id(setup, "INBOX").values() {
        assert!(
            flags.contains(&"\\Deleted".to_string()),
            "only the moved originals stay in INBOX: {flags:?}"
        );
    }
}

/// A local message without a Message-ID header, uploaded to a server that
/// does not report the new UID (no UIDPLUS): uploaded once, and not
/// downloaded back as a second copy.
#[test]
fn a_local_message_without_message_id_is_uploaded_once_without_uidplus() {
    let setup = bare_server();
    write_local(
        &setup,
        "INBOX",
        "1700000000.M1P1.laptop:2,S",
        b"From: a@example.org\nSubject: no id\n\nwritten by a script\n",
        1_700_000_000,
    );
    let run = traced(&setup, &["sync"]);
    assert_eq!(totals(&run).pushed, 1, "{run:?}");
    let second = traced(&setup, &["sync"]);
    let third = traced(&setup, &["sync"]);
    let server = setup.dovecot.messages(USER, "INBOX").expect("read");
    let local = setup.files("INBOX");
    assert_eq!(server.len(), 1, "uploaded once: {server:?}\n{second:?}");
    assert_eq!(
        local.len(),
        1,
        "no second local copy: {local:?}\n--- second run:\n{second:?}\n--- third run:\n{third:?}"
    );
    assert_settled(&setup, true);
}

// ---------------------------------------------------------------------
// 2. A 60 MiB message both ways, and ferry's peak memory.
// ---------------------------------------------------------------------

/// How many 76-character lines the big message has: a little more than
/// 60 MiB with LF line endings.
const BIG_LINES: u64 = 60 * 1024 * 1024 / (BIG_LINE_LEN as u64 + 1) + 1;
/// ferry's peak RSS must stay below this while moving a 60 MiB message.
const PEAK_RSS_LIMIT_KIB: u64 = 40 * 1024;

/// Writes a big text message (headers, then `BIG_LINES` lines of 76
/// characters) with LF or CRLF line endings. Deterministic in `seed`, so
/// it can be written again to compare against, instead of being held.
fn write_big_message(out: &mut impl Write, seed: u64, crlf: bool) -> io::Result<()> {
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    for header in big_headers(seed) {
        out.write_all(header.as_bytes())?;
        out.write_all(eol)?;
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut line = [0u8; BIG_LINE_LEN];
    for _ in 0..BIG_LINES {
        for chunk in line.chunks_mut(10) {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bits = state;
            for byte in chunk {
                *byte = ALPHABET[(bits & 63) as usize];
                bits >>= 6;
            }
        }
        out.write_all(&line)?;
        out.write_all(eol)?;
    }
    Ok(())
}

const BIG_LINE_LEN: usize = 76;

fn big_headers(seed: u64) -> [String; 8] {
    [
        "From: big@example.org".to_string(),
        "To: b@example.org".to_string(),
        format!("Subject: big {seed}"),
        format!("Message-ID: <big{seed}@sync.test>"),
        "Date: Tue, 14 Nov 2023 22:13:20 +0000".to_string(),
        "MIME-Version: 1.0".to_string(),
        "Content-Type: text/plain; charset=us-ascii".to_string(),
        String::new(),
    ]
}

/// The size of [`write_big_message`]'s output.
fn big_message_len(seed: u64, crlf: bool) -> u64 {
    let eol = if crlf { 2 } else { 1 };
    let headers: u64 = big_headers(seed).iter().map(|h| h.len() as u64 + eol).sum();
    headers + BIG_LINES * (BIG_LINE_LEN as u64 + eol)
}

/// A writer that compares what is written with what `actual` yields.
struct Compare<R: Read> {
    actual: R,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: Read> Write for Compare<R> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.resize(data.len(), 0);
        self.actual.read_exact(&mut self.buf).map_err(|e| {
            io::Error::other(format!("the copy ends before byte {}: {e}", self.offset))
        })?;
        if let Some(i) = self.buf.iter().zip(data).position(|(a, b)| a != b) {
            return Err(io::Error::other(format!(
                "the copy differs at byte {}",
                self.offset + i as u64
            )));
        }
        self.offset += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checks that `actual` is exactly the big message `seed` (LF or CRLF).
fn assert_is_big_message(actual: impl Read, seed: u64, crlf: bool) {
    let mut compare = BufWriter::with_capacity(
        1 << 20,
        Compare {
            actual,
            offset: 0,
            buf: Vec::new(),
        },
    );
    write_big_message(&mut compare, seed, crlf).expect("same content");
    compare.flush().expect("same content");
    let mut compare = compare
        .into_inner()
        .map_err(|e| e.into_error())
        .expect("flush");
    let mut rest = Vec::new();
    compare.actual.read_to_end(&mut rest).expect("read");
    assert!(
        rest.is_empty(),
        "the copy has {} bytes too many",
        rest.len()
    );
}

/// Streams the body of `uid` in `mailbox` from the server (plain IMAP,
/// `BODY.PEEK[]`) into `check`; returns the literal's announced size.
fn with_server_body(
    dovecot: &Dovecot,
    mailbox: &str,
    uid: u32,
    check: impl FnOnce(&mut dyn Read),
) -> u64 {
    let stream = std::net::TcpStream::connect(dovecot.imap_addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut line = String::new();
    let mut read_line = |reader: &mut BufReader<std::net::TcpStream>| {
        line.clear();
        reader.read_line(&mut line).expect("read line");
        assert!(!line.is_empty(), "server closed");
        line.clone()
    };
    read_line(&mut reader); // greeting
    let commands = [
        format!("a LOGIN \"{}\" \"{}\"", USER.name, USER.password),
        format!("b EXAMINE \"{mailbox}\""),
    ];
    for command in commands {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .expect("send");
        let tag = command.split(' ').next().expect("tag").to_string();
        loop {
            let line = read_line(&mut reader);
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{command}: {line}");
                break;
            }
        }
    }
    writer
        .write_all(format!("c UID FETCH {uid} BODY.PEEK[]\r\n").as_bytes())
        .expect("send");
    let size = loop {
        let line = read_line(&mut reader);
        assert!(!line.starts_with("c "), "no body: {line}");
        if line.contains(" FETCH ") && line.trim_end().ends_with('}') {
            let open = line.rfind('{').expect("literal");
            break line[open + 1..line.trim_end().len() - 1]
                .parse::<u64>()
                .expect("literal size");
        }
    };
    let mut literal = (&mut reader).take(size);
    check(&mut literal);
    size
}

/// How the peak RSS of a ferry run was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RssMethod {
    /// GNU time's `%M`: the kernel's `ru_maxrss` of the ferry process,
    /// from `wait4`, exact.
    GnuTime,
    /// `VmHWM` of `/proc/<pid>/status`, polled until the process ends: a
    /// lower bound (growth in its last milliseconds would be missed).
    PolledHighWaterMark,
}

/// Whether GNU time can measure (`FERRY_TEST_RSS=poll` forces the
/// fallback, to check it).
fn gnu_time_works() -> bool {
    if std::env::var_os("FERRY_TEST_RSS").is_some_and(|v| v == "poll") {
        return false;
    }
    std::process::Command::new("/usr/bin/time")
        .args(["-o", "/dev/null", "-f", "%M", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `ferry args` and measures its peak RSS in KiB.
///
/// Preferred: run it under GNU time (`/usr/bin/time -f %M -o FILE`), which
/// reports `ru_maxrss` of exactly that process, taken by `wait4` when it
/// ends, so nothing is missed and nothing else (the test process, other
/// tests' children) is counted. `getrusage(RUSAGE_CHILDREN)` from the test
/// would mix in every child of every test running in parallel, and reading
/// `/proc/<pid>/status` once just before the exit is racy. Without GNU
/// time, `VmHWM` (the kernel's own high-water mark, which never goes down)
/// is polled every few milliseconds while the process runs: the last
/// reading is a lower bound, close to exact as the peak happens while the
/// message streams, not while the process exits.
fn ferry_with_peak_rss(setup: &Setup, args: &[&str]) -> (Out, u64, RssMethod) {
    if gnu_time_works() {
        let report = setup.home.path().join("time.out");
        let report_arg = report.to_string_lossy().into_owned();
        let output = setup
            .ferry_command(&["/usr/bin/time", "-o", &report_arg, "-f", "%M"], args)
            .output()
            .expect("ferry runs");
        let run = Out {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let text = std::fs::read_to_string(&report).expect("time's report");
        let kib = text
            .lines()
            .rev()
            .find_map(|l| l.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no %M in time's report: {text:?}"));
        return (run, kib, RssMethod::GnuTime);
    }
    let mut child = setup
        .ferry_command(&[], args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry runs");
    let status_path = format!("/proc/{}/status", child.id());
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = read_all(Box::new(stdout));
    let err = read_all(Box::new(stderr));
    let mut kib = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(hwm) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                kib = kib.max(hwm);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let run = Out {
        code: status.code().expect("exit code"),
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    };
    (run, kib, RssMethod::PolledHighWaterMark)
}

/// A 60 MiB message server -> Maildir and Maildir -> server through the
/// binary: the copies are byte-exact (LF in the file, CRLF on the server)
/// and ferry's peak RSS stays bounded, far below the message's size.
#[test]
fn a_60_mib_message_syncs_both_ways_in_bounded_memory() {
    let setup = Setup::new(DovecotOptions::default());
    let scratch = tempfile::tempdir().expect("scratch");

    // A baseline: a run that moves nothing.
    let (baseline, baseline_kib, method) = ferry_with_peak_rss(&setup, &["sync"]);
    assert_eq!(baseline.code, 0, "{baseline:?}");

    // Server -> Maildir: the server holds the message with CRLF.
    let far_source = scratch.path().join("far.eml");
    {
        let mut file = BufWriter::new(std::fs::File::create(&far_source).expect("create"));
        write_big_message(&mut file, 1, true).expect("write");
        file.flush().expect("flush");
    }
    let crlf_len = big_message_len(1, true);
    assert!(crlf_len > 60 * 1024 * 1024, "{crlf_len}");
    save_from_file(&setup.dovecot, "INBOX", &far_source);
    std::fs::remove_file(&far_source).expect("rm");
    let server = setup.dovecot.messages(USER, "INBOX").expect("read");
    assert_eq!(server.len(), 1);
    assert_eq!(server[0].size, crlf_len, "the server's CRLF size");

    let started = Instant::now();
    let (pull, pull_kib, _) = ferry_with_peak_rss(&setup, &["sync"]);
    let pull_time = started.elapsed();
    assert_eq!(pull.code, 0, "{pull:?}");
    assert!(
        pull.stdout.contains("total: pulled 1, pushed 0"),
        "{pull:?}"
    );
    let files = setup.files("INBOX");
    assert_eq!(files.len(), 1, "{files:?}");
    let local = std::fs::File::open(&files[0].2).expect("open");
    assert_eq!(
        local.metadata().expect("stat").len(),
        big_message_len(1, false),
        "stored with LF"
    );
    assert_is_big_message(BufReader::with_capacity(1 << 20, local), 1, false);

    // Maildir -> server: the file has LF, the server gets CRLF.
    let near = setup
        .maildir()
        .join("INBOX/cur/1700000000.M60P60.laptop:2,S");
    {
        let mut file = BufWriter::new(std::fs::File::create(&near).expect("create"));
        write_big_message(&mut file, 2, false).expect("write");
        file.flush().expect("flush");
    }
    let started = Instant::now();
    let (push, push_kib, _) = ferry_with_peak_rss(&setup, &["sync"]);
    let push_time = started.elapsed();
    assert_eq!(push.code, 0, "{push:?}");
    assert!(
        push.stdout.contains("total: pulled 0, pushed 1"),
        "{push:?}"
    );
    let server = server_by_id(&setup, "INBOX");
    assert_eq!(server.len(), 2, "{server:?}");
    let (uid, flags, _) = &server["<big2@sync.test>"];
    assert_eq!(flags, &["\\Seen"]);
    let announced = with_server_body(&setup.dovecot, "INBOX", *uid, |body| {
        assert_is_big_message(body, 2, true)
    });
    assert_eq!(announced, big_message_len(2, true), "CRLF on the server");

    eprintln!(
        "peak RSS of ferry ({method:?}): no-op sync {baseline_kib} KiB; \
         60 MiB server -> maildir {pull_kib} KiB in {:.1} s; \
         60 MiB maildir -> server {push_kib} KiB in {:.1} s",
        pull_time.as_secs_f64(),
        push_time.as_secs_f64()
    );
    assert!(baseline_kib > 0, "no measurement");
    for (what, kib) in [
        ("server -> maildir", pull_kib),
        ("maildir -> server", push_kib),
    ] {
        assert!(
            kib < PEAK_RSS_LIMIT_KIB,
            "{what}: ferry's peak RSS was {kib} KiB for a 60 MiB message \
             (limit {PEAK_RSS_LIMIT_KIB} KiB, no-op run {baseline_kib} KiB)"
        );
    }

    let again = ferry(&setup, &["sync"]);
    assert!(again.stdout.contains(NOTHING_DONE), "{again:?}");
    let plan = ferry(&setup, &["plan"]);
    assert!(plan_actions(&plan).is_empty(), "{plan:?}");
}

// ---------------------------------------------------------------------
// 3. Another client changes flags while a sync is in flight.
// ---------------------------------------------------------------------

fn another_client_changes_flags_during_a_sync(options: DovecotOptions, hidden: bool) {
    let (setup, proxy) = Setup::distant(options, "");
    let mut client = setup.dovecot.client().expect("client");
    for n in 1..=8 {
        let flags: &[&str] = if n <= 4 {
            &["\\Seen", "\\Flagged"]
        } else {
            &["\\Seen"]
        };
        client
            .append("INBOX", flags, None, &message(n))
            .expect("append");
    }
    let first = ferry(&setup, &["sync", "-vv"]);
    assert_eq!(first.code, 0, "{first:?}");
    if hidden {
        assert_no_hidden_extension(&first);
    }
    assert!(
        proxy.connections() > 0,
        "ferry went through the proxy: {first:?}"
    );

    // Offline local changes ferry will push: +R on 1 and 2, -F on 3 and
    // 4, +D on 5.
    let local = local_by_subject(&setup, "INBOX");
    for (n, letters) in [(1, "FRS"), (2, "FRS"), (3, "S"), (4, "S"), (5, "DS")] {
        set_local_letters(&local[&subject(n)], letters);
    }
    // New on the server, downloaded during the run.
    setup.append_messages("INBOX", 9..=10, &["\\Seen"]);
    let uids: BTreeMap<u32, u32> = (1..=10)
        .map(|n| (n, server_by_id(&setup, "INBOX")[&id(n)].0))
        .collect();
    client.select("INBOX").expect("select");

    // Act (1) as soon as ferry has read the folder's flags, so the change
    // is not in its snapshot, and (2) right after ferry sent its flag
    // changes, while they travel to the server.
    let mut snapshot_sent = false;
    let mut acted_after_snapshot = false;
    let mut acted_during_store = false;
    let during = Out::from(setup.ferry_acting(|line| {
        // The snapshot's last command is its first UID FETCH (the flags
        // of all, or of what changed, then the new messages).
        if line.contains(" C: ") && line.contains("UID FETCH") {
            snapshot_sent = true;
        }
        if snapshot_sent
            && !acted_after_snapshot
            && line.contains(" S: ")
            && line.contains(" FETCH (")
        {
            // The server answered the snapshot: these are not in it.
            let changes: [(u32, bool, &str); 9] = [
                (1, true, "$Forwarded"),
                (2, false, "\\Seen"),
                (3, true, "\\Draft"),
                (4, false, "\\Seen"),
                (4, true, "\\Answered"),
                (6, true, "\\Flagged"),
                (7, false, "\\Seen"),
                (9, true, "\\Flagged"),
                (10, false, "\\Seen"),
            ];
            for (n, add, flag) in changes {
                let stored = match add {
                    true => client.add_flags("INBOX", &[uids[&n]], &[flag]),
                    false => client.remove_flags("INBOX", &[uids[&n]], &[flag]),
                };
                stored.expect("store");
            }
            acted_after_snapshot = true;
        }
        if acted_after_snapshot
            && !acted_during_store
            && line.contains(" C: ")
            && verb(line.split_once(" C: ").map_or("", |(_, c)| c)) == "UID STORE"
        {
            for (n, flag) in [(5, "\\Answered"), (8, "\\Flagged")] {
                client
                    .add_flags("INBOX", &[uids[&n]], &[flag])
                    .expect("store");
            }
            acted_during_store = true;
        }
    }));
    assert_eq!(during.code, 0, "{during:?}");
    assert!(
        acted_after_snapshot && acted_during_store,
        "the other client did not get to act during the run: {during:?}"
    );
    if hidden {
        assert_no_hidden_extension(&during);
    }
    assert!(during.stdout.contains("pulled 2"), "{during:?}");
    // The changes after the snapshot were not seen by this run: message 6
    // is not flagged locally yet (else the race was not exercised).
    assert_eq!(
        local_by_subject(&setup, "INBOX")[&subject(6)].info,
        "S",
        "{during:?}"
    );

    let second = ferry(&setup, &["sync", "-vv"]);
    assert_eq!(second.code, 0, "{second:?}");
    if hidden {
        assert_no_hidden_extension(&second);
    }

    let expected: [(u32, &[&str]); 10] = [
        (1, &["\\Seen", "\\Flagged", "\\Answered", "$Forwarded"]),
        (2, &["\\Flagged", "\\Answered"]),
        (3, &["\\Seen", "\\Draft"]),
        (4, &["\\Answered"]),
        (5, &["\\Seen", "\\Draft", "\\Answered"]),
        (6, &["\\Seen", "\\Flagged"]),
        (7, &[]),
        (8, &["\\Seen", "\\Flagged"]),
        (9, &["\\Seen", "\\Flagged"]),
        (10, &[]),
    ];
    let server = server_by_id(&setup, "INBOX");
    let local = local_by_subject(&setup, "INBOX");
    assert_eq!(server.len(), 10, "no duplicate, nothing lost: {server:?}");
    assert_eq!(local.len(), 10, "no duplicate, nothing lost: {local:?}");
    let mut wrong = Vec::new();
    for (n, flags) in expected {
        let want = sorted(flags);
        let got = &server[&id(n)].1;
        if *got != want {
            wrong.push(format!("server message {n}: {got:?}, expected {want:?}"));
        }
        let mut letters: Vec<char> = flags
            .iter()
            .filter_map(|f| SIX_FLAGS.iter().position(|s| s == f))
            .map(|i| SIX_LETTERS.as_bytes()[i] as char)
            .collect();
        letters.sort_unstable();
        let want: String = letters.into_iter().collect();
        let got = &local[&subject(n)].info;
        if *got != want {
            wrong.push(format!("local message {n}: {got:?}, expected {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n--- the run during the changes:\n{during:?}\n--- the next run:\n{second:?}",
        wrong.join("\n")
    );
    assert_settled(&setup, hidden);
    drop(proxy);
}

/// On a server with every extension (CONDSTORE: the other client's changes
/// reach ferry's session as unsolicited FETCHes).
#[test]
fn another_client_changing_flags_during_a_sync_loses_nothing() {
    another_client_changes_flags_during_a_sync(DovecotOptions::default(), false);
}

/// The same on the server without CONDSTORE, QRESYNC, MOVE, UIDPLUS and
/// LIST-STATUS.
#[test]
fn another_client_changing_flags_during_a_sync_loses_nothing_without_extensions() {
    another_client_changes_flags_during_a_sync(DovecotOptions::hiding(&HIDDEN), true);
}

/// Another client appends a message, moves one to another folder, and
/// expunges one it marked \Deleted, all right after ferry listed the
/// folder; ferry meanwhile pushes a local change. Its run acts on nothing
/// stale, and the next run brings both sides to the same end: the new
/// message here, the moved one in Archive, the expunged one gone, ferry's
/// change on the server, nothing twice.
#[test]
fn another_client_appending_moving_and_expunging_during_a_sync_loses_nothing() {
    let (setup, _proxy) = Setup::distant(DovecotOptions::default(), "connections = 1\n");
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    setup.append_messages("INBOX", 1..=8, &["\\Seen"]);
    let first = ferry(&setup, &["sync"]);
    assert_eq!(first.code, 0, "{first:?}");
    let local = local_by_subject(&setup, "INBOX");
    set_local_letters(&local[&subject(1)], "FS");
    let uid = |n: u32| server_by_id(&setup, "INBOX")[&id(n)].0;
    let (six, seven) = (uid(6), uid(7));
    let mut acted = false;
    let during = Out::from(setup.ferry_acting(|line| {
        if !acted && line.contains(" S: ") && line.contains(" SEARCH ") {
            client
                .append("INBOX", &[], None, &message(9))
                .expect("append");
            client
                .move_messages("INBOX", &[six], "Archive")
                .expect("move");
            client.expunge("INBOX", &[seven]).expect("expunge");
            acted = true;
        }
    }));
    assert!(
        acted,
        "the other client did not act during the run: {during:?}"
    );
    assert!(during.code == 0 || during.code == 3, "{during:?}");
    let second = ferry(&setup, &["sync"]);
    assert_eq!(second.code, 0, "{second:?}");
    let inbox: Vec<String> = local_by_subject(&setup, "INBOX").into_keys().collect();
    let archive: Vec<String> = local_by_subject(&setup, "Archive").into_keys().collect();
    let want: Vec<String> = [1, 2, 3, 4, 5, 8, 9].map(subject).to_vec();
    assert_eq!(inbox, want, "{during:?}\n{second:?}");
    assert_eq!(archive, [subject(6)], "{during:?}\n{second:?}");
    let server_inbox = server_by_id(&setup, "INBOX");
    assert_eq!(server_inbox.len(), 7, "{server_inbox:?}");
    assert!(server_inbox[&id(1)].1.contains(&"\\Flagged".to_string()));
    assert_eq!(server_by_id(&setup, "Archive").len(), 1);
    assert_settled(&setup, false);
}
