//! Local edits made while a sync runs, as a mail reader makes them: a
//! rename that flips flags (`:2,S` -> `:2,FS`), a move from `new/` to
//! `cur/`, a message rewritten by an editor (a new file under a new unique
//! name, the old one unlinked), and a half-written file left in `tmp/`.
//!
//! ferry talks to a private Dovecot through a proxy that adds 40 ms each
//! way, so a run lasts long enough to be caught at a chosen point of its
//! trace (`ferry sync -vv`): before the Maildir is listed, right after the
//! plan is made, racing ferry's own renames, and while it downloads.
//! Whatever the point, after the run and one more nothing is deleted or
//! copied twice on either side, no message is uploaded or downloaded
//! again, the edits reach the server, the file in `tmp/` is left alone,
//! and the run after that has nothing to do.
//!
//! A rewrite that changes the content (a line added to the body) is
//! uploaded and replaces the old server copy on the next run; when another
//! client flagged the message meanwhile, both versions are kept.

mod support;

use ferry_testkit::proxy::FaultProxy;
use ferry_testkit::{DovecotOptions, USER};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use support::{NOTHING_DONE, Run, Setup, message};

/// The two folders of the account and the first message number of each.
const FOLDERS: [(&str, u32); 2] = [("Archive", 20), ("INBOX", 0)];

/// `message(n)` as a Maildir file holds it: LF line endings.
fn lf(n: u32) -> Vec<u8> {
    message(n).into_iter().filter(|b| *b != b'\r').collect()
}

fn id(n: u32) -> String {
    format!("<m{n}@sync.test>")
}

/// The Message-ID of a local file (`None` for a file without one).
fn file_id(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
}

/// The files of a local folder by Message-ID: (sub dir, info letters,
/// path). A Message-ID found twice fails.
fn local_by_id(setup: &Setup, folder: &str) -> BTreeMap<String, (String, String, PathBuf)> {
    let mut out = BTreeMap::new();
    for (_, info, path) in setup.files(folder) {
        let text = std::fs::read_to_string(&path).expect("read a local message");
        assert!(!text.contains('\r'), "{} is stored with LF", path.display());
        let id = file_id(&path).unwrap_or_else(|| panic!("no Message-ID in {}", path.display()));
        let sub = path
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .expect("sub dir");
        if let Some(other) = out.insert(id.clone(), (sub, info, path.clone())) {
            panic!(
                "{id} twice in local {folder}: {} and {}",
                other.2.display(),
                path.display()
            );
        }
    }
    out
}

/// A server copy of a message: flags, GUID, size.
type ServerCopy = (Vec<String>, String, u64);

/// The server's messages of `folder` by Message-ID. A Message-ID found
/// twice fails.
fn server_by_id(setup: &Setup, folder: &str) -> BTreeMap<String, ServerCopy> {
    let mut out = BTreeMap::new();
    for m in setup.dovecot.messages(USER, folder).expect("doveadm fetch") {
        let all = (m.flags.clone(), m.guid.clone(), m.size);
        if let Some(other) = out.insert(m.message_id.clone(), all) {
            panic!(
                "{} twice on the server in {folder}: {other:?} and {m:?}",
                m.message_id
            );
        }
    }
    out
}

/// The current path of the local message `n` of `folder`, if any.
fn find_local(setup: &Setup, folder: &str, n: u32) -> Option<PathBuf> {
    let want = id(n);
    setup
        .files(folder)
        .into_iter()
        .map(|(_, _, path)| path)
        .find(|path| file_id(path).as_deref() == Some(want.as_str()))
}

/// Runs `edit` on the current path of message `n` of `folder`, again when
/// ferry renamed the file under it meanwhile (the listing missed it, or
/// `edit` fails with NotFound), as a mail reader re-reads its folder and
/// tries again.
fn edit_local(setup: &Setup, folder: &str, n: u32, edit: impl Fn(&Path) -> std::io::Result<()>) {
    for _ in 0..50 {
        let Some(path) = find_local(setup, folder, n) else {
            continue;
        };
        match edit(&path) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("editing {}: {e}", path.display()),
        }
    }
    panic!("message {n} of local {folder} could not be edited: not there, or always moving");
}

/// The unique part and the info letters of a Maildir file name.
fn split_name(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    name.split_once(":2,")
        .map_or((name.clone(), String::new()), |(k, i)| (k.into(), i.into()))
}

fn folder_dir(path: &Path) -> PathBuf {
    path.parent()
        .and_then(Path::parent)
        .expect("folder dir")
        .to_path_buf()
}

/// Sets the flag letter `letter` on message `n`, as mutt does: one rename,
/// within `cur/`.
fn flag_local(setup: &Setup, folder: &str, n: u32, letter: char) {
    edit_local(setup, folder, n, |path| {
        let (key, info) = split_name(path);
        let mut letters: BTreeSet<char> = info.chars().collect();
        letters.insert(letter);
        let info: String = letters.into_iter().collect();
        let target = folder_dir(path).join("cur").join(format!("{key}:2,{info}"));
        std::fs::rename(path, target)
    });
}

/// Moves message `n` from `new/` to `cur/`, adding `:2,` (a reader that
/// has shown the folder's new mail).
fn see_local(setup: &Setup, folder: &str, n: u32) {
    edit_local(setup, folder, n, |path| {
        assert_eq!(
            path.parent().and_then(Path::file_name),
            Some("new".as_ref()),
            "message {n} of {folder} is not in new/: {}",
            path.display()
        );
        let (key, _) = split_name(path);
        let target = folder_dir(path).join("cur").join(format!("{key}:2,"));
        std::fs::rename(path, target)
    });
}

/// Rewrites message `n` as an editor does: `content` (the same as now when
/// `None`) written to `tmp/` under the new unique name `new_key`, renamed
/// into `cur/` with the flags the file has, then the old name unlinked.
/// When the old file moved meanwhile, the new one is taken back and the
/// whole edit made again, so the flags are those of the file it replaced.
fn rewrite_local(setup: &Setup, folder: &str, n: u32, new_key: &str, content: Option<&[u8]>) {
    edit_local(setup, folder, n, |old| {
        let bytes = match content {
            Some(bytes) => bytes.to_vec(),
            None => std::fs::read(old)?,
        };
        let (_, info) = split_name(old);
        let dir = folder_dir(old);
        let tmp = dir.join("tmp").join(new_key);
        std::fs::write(&tmp, bytes)?;
        let target = dir.join("cur").join(format!("{new_key}:2,{info}"));
        std::fs::rename(&tmp, &target)?;
        if let Err(e) = std::fs::remove_file(old) {
            std::fs::remove_file(&target).expect("take the new file back");
            return Err(e);
        }
        Ok(())
    });
}

/// A half-written message in `tmp/` that never gets renamed: its header
/// and a cut body.
fn partial_message(n: u32) -> Vec<u8> {
    let mut bytes = lf(n);
    bytes.truncate(bytes.len() - 8);
    bytes
}

/// The counts of a sync's "total:" line: pulled, pushed, deleted.
fn totals(run: &Run) -> (u64, u64, u64) {
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("total: "))
        .unwrap_or_else(|| panic!("no total line: {:?}", Brief(run)));
    let count = |name: &str| -> u64 {
        line.split(", ")
            .find_map(|part| part.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    (count("pulled "), count("pushed "), count("deleted "))
}

/// A protocol line of a `-vv` trace: `C` (sent) or `S` (received), the
/// connection (`""` for the main one, `"2"` for `C2:`), and the text.
fn protocol(line: &str) -> Option<(char, &str, &str)> {
    let (_, rest) = line.split_once("ferry::protocol: ")?;
    let (label, text) = rest.split_once(": ")?;
    let (side, connection) = label.split_at_checked(1)?;
    let side = side.chars().next()?;
    let numbered = connection.chars().all(|c| c.is_ascii_digit());
    (matches!(side, 'C' | 'S') && numbered).then_some((side, connection, text.trim()))
}

/// A run in a failure message: its exit, its stdout, ferry's own log lines
/// and the commands it sent (not the responses nor the TLS library's
/// chatter of `-vv`).
struct Brief<'a>(&'a Run);

impl std::fmt::Debug for Brief<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let run = self.0;
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr (brief)\n",
            run.code, run.stdout
        )?;
        for line in run.stderr.lines() {
            let sent = protocol(line).is_some_and(|(side, _, _)| side == 'C');
            let ours = !line.contains("ferry::protocol")
                && (line.contains(" ferry") || line.starts_with("ferry"));
            if sent || ours {
                writeln!(f, "{line}")?;
            }
        }
        Ok(())
    }
}

/// A run that ended without panicking, with exit 0 or 3 (a message ferry
/// could not act on because it changed under it is named, not fatal).
fn assert_finished(run: &Run, what: &str) {
    assert!(
        !run.stderr.contains("panicked"),
        "{what}: ferry panicked\n{:?}",
        Brief(run)
    );
    assert!(run.code == 0 || run.code == 3, "{what}: {:?}", Brief(run));
}

/// Where in a run the edits are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EditPoint {
    /// At the first SELECT: before either folder's Maildir is listed (the
    /// listing meets directories changed a moment ago).
    BeforeTheListing,
    /// As soon as the plan is made (its progress line): every listing is
    /// taken, nothing is done yet; ferry acts on names the edits changed.
    AfterThePlan,
    /// When the server answers the first flag change ferry sent (today
    /// Archive's, on the main connection): ferry goes on at once with its
    /// own renames in Archive, racing the edits there.
    RacingFerrysRenames,
    /// When ferry selects INBOX to download into it, Archive done: ferry's
    /// renames in INBOX are made, its downloads and upload there and the
    /// end of the run are still to come.
    WhileDownloading,
}

/// What the edit points look for in the trace.
#[derive(Debug, Default)]
struct Watch {
    /// The plan's progress line was seen.
    planned: bool,
    /// The connection and tag of the first UID STORE sent.
    store: Option<(String, String)>,
}

impl EditPoint {
    /// Whether `line` of the trace is the point.
    fn reached(self, line: &str, watch: &mut Watch) -> bool {
        watch.planned |= is_plan_line(line);
        let Some((side, connection, text)) = protocol(line) else {
            return self == EditPoint::AfterThePlan && is_plan_line(line);
        };
        let words: Vec<&str> = text.split_whitespace().take(3).collect();
        let word = |i: usize| words.get(i).copied().unwrap_or_default();
        let sent_on_main = side == 'C' && connection.is_empty();
        let select = sent_on_main && word(1).eq_ignore_ascii_case("SELECT");
        if side == 'C' && watch.store.is_none() && words.get(1..) == Some(&["UID", "STORE"][..]) {
            watch.store = Some((connection.to_string(), word(0).to_string()));
        }
        match self {
            EditPoint::BeforeTheListing => select,
            EditPoint::AfterThePlan => false,
            EditPoint::RacingFerrysRenames => {
                side == 'S'
                    && watch
                        .store
                        .as_ref()
                        .is_some_and(|(c, tag)| c == connection && tag == word(0))
            }
            EditPoint::WhileDownloading => watch.planned && select && word(2) == "INBOX",
        }
    }
}

/// The progress line printed once the account is planned.
fn is_plan_line(line: &str) -> bool {
    line.contains("ferry: test: ") && line.contains(" to sync in ")
}

/// The synced account of the edit scenarios, for message number base `b`
/// of each folder: `b+1..=b+6` seen (in `cur/`), `b+7` and `b+8` unseen
/// (in `new/`).
fn synced_account() -> (Setup, FaultProxy) {
    let (setup, proxy) = Setup::distant(DovecotOptions::default(), "");
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    for (folder, b) in FOLDERS {
        setup.append_messages(folder, b + 1..=b + 6, &["\\Seen"]);
        setup.append_messages(folder, b + 7..=b + 8, &[]);
    }
    let first = setup.sync();
    assert!(
        proxy.connections() > 0,
        "ferry went through the proxy: {first:?}"
    );
    for (folder, b) in FOLDERS {
        let local = local_by_id(&setup, folder);
        assert_eq!(local.len(), 8, "{folder}: {first:?}");
        for n in b + 7..=b + 8 {
            assert_eq!(local[&id(n)].0, "new", "unseen mail lands in new/");
        }
    }
    (setup, proxy)
}

/// The scenario: a synced account; then work for the next run on both
/// sides (per folder: two new server messages to download, a server flag
/// change on a message the user will flip and one on a message the user
/// will rewrite, a local flag change and a new local message to upload);
/// then during that run, at `point`, in both folders: (1) `b+1` (which
/// ferry will rename for the server's \Answered) and `b+4` flipped to
/// `:2,FS`, (2) `b+7` moved from `new/` to `cur/`, (3) `b+5` (which ferry
/// will rename for the server's \Flagged) and `b+6` rewritten unchanged
/// under new names, (4) a half-written `b+13` left in `tmp/`.
fn local_edits_during_a_sync(point: EditPoint) {
    let started = std::time::Instant::now();
    let (setup, _proxy) = synced_account();
    let mut client = setup.dovecot.client().expect("client");
    // What the server holds now, by Message-ID: none of it may be
    // uploaded again or removed.
    let before: BTreeMap<&str, BTreeMap<String, String>> = FOLDERS
        .iter()
        .map(|&(folder, _)| {
            let guids = server_by_id(&setup, folder)
                .into_iter()
                .map(|(id, (_, guid, _))| (id, guid))
                .collect();
            (folder, guids)
        })
        .collect();
    for (folder, b) in FOLDERS {
        setup.append_messages(folder, b + 9..=b + 10, &["\\Seen"]);
        let server = setup.dovecot.messages(USER, folder).expect("messages");
        let uid = |n: u32| {
            server
                .iter()
                .find(|m| m.message_id == id(n))
                .map(|m| m.uid)
                .expect("uid")
        };
        client
            .add_flags(folder, &[uid(b + 1)], &["\\Answered"])
            .expect("store");
        client
            .add_flags(folder, &[uid(b + 5)], &["\\Flagged"])
            .expect("store");
        flag_local(&setup, folder, b + 2, 'R');
        let upload = setup
            .maildir()
            .join(folder)
            .join("cur")
            .join(format!("1700000000.M{}P1.reader:2,S", b + 12));
        std::fs::write(upload, lf(b + 12)).expect("a new local message");
    }

    let mut watch = Watch::default();
    let mut edited = false;
    let mut partials: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let during = setup.ferry_acting(|line| {
        if !point.reached(line, &mut watch) || edited {
            return;
        }
        edited = true;
        for (folder, b) in FOLDERS {
            // (4) first: a reader still writing when ferry looks.
            let partial = setup
                .maildir()
                .join(folder)
                .join("tmp")
                .join(format!("1800000000.M{}P2.reader", b + 13));
            std::fs::write(&partial, partial_message(b + 13)).expect("partial write");
            partials.push((partial, partial_message(b + 13)));
            flag_local(&setup, folder, b + 1, 'F');
            flag_local(&setup, folder, b + 4, 'F');
            see_local(&setup, folder, b + 7);
            for n in [b + 5, b + 6] {
                let key = format!("1800000001.M{n}P3.editor");
                rewrite_local(&setup, folder, n, &key, None);
            }
        }
    });
    assert!(
        edited,
        "the edit point {point:?} was not reached during the run: {:?}",
        Brief(&during)
    );
    assert_finished(&during, "the run edited under");
    let after = setup.ferry(&["sync"]);
    assert_eq!(
        after.code,
        0,
        "the run after: {after:?}\nduring: {:?}",
        Brief(&during)
    );
    let runs = format!("during: {:?}\nafter: {after:?}", Brief(&during));

    // Nothing deleted, nothing sent or fetched twice: per folder two
    // downloads and one upload, over both runs.
    let (during_totals, after_totals) = (totals(&during), totals(&after));
    assert_eq!(
        (
            during_totals.0 + after_totals.0,
            during_totals.1 + after_totals.1,
            during_totals.2 + after_totals.2,
        ),
        (4, 2, 0),
        "pulled, pushed, deleted over both runs\n{runs}"
    );

    for (folder, b) in FOLDERS {
        let server = server_by_id(&setup, folder);
        let local = local_by_id(&setup, folder);
        let mut want_ids: Vec<String> = (b + 1..=b + 10).chain([b + 12]).map(id).collect();
        want_ids.sort();
        assert_eq!(
            server.keys().cloned().collect::<Vec<_>>(),
            want_ids,
            "{folder} on the server\n{runs}"
        );
        assert_eq!(
            local.keys().cloned().collect::<Vec<_>>(),
            want_ids,
            "{folder} locally\n{runs}"
        );
        // The messages of before are the same server copies: none removed
        // and uploaded again (the rewritten ones included).
        for (message_id, guid) in &before[folder] {
            assert_eq!(
                &server[message_id].1, guid,
                "{message_id} in {folder} is another copy on the server\n{runs}"
            );
        }
        let want: [(u32, &[&str], &str); 11] = [
            (b + 1, &["\\Answered", "\\Flagged", "\\Seen"], "FRS"),
            (b + 2, &["\\Answered", "\\Seen"], "RS"),
            (b + 3, &["\\Seen"], "S"),
            (b + 4, &["\\Flagged", "\\Seen"], "FS"),
            (b + 5, &["\\Flagged", "\\Seen"], "FS"),
            (b + 6, &["\\Seen"], "S"),
            (b + 7, &[], ""),
            (b + 8, &[], ""),
            (b + 9, &["\\Seen"], "S"),
            (b + 10, &["\\Seen"], "S"),
            (b + 12, &["\\Seen"], "S"),
        ];
        for (n, flags, letters) in want {
            assert_eq!(
                server[&id(n)].0,
                flags.to_vec(),
                "flags of {n} on the server in {folder}\n{runs}"
            );
            assert_eq!(
                local[&id(n)].1,
                letters,
                "letters of {n} in local {folder}\n{runs}"
            );
            assert_eq!(
                std::fs::read(&local[&id(n)].2).expect("read"),
                lf(n),
                "content of {n} in local {folder}"
            );
        }
        let (seen, unseen) = (b + 7, b + 8);
        assert_eq!(local[&id(seen)].0, "cur", "{seen} stays in cur/\n{runs}");
        assert_eq!(
            local[&id(unseen)].0,
            "new",
            "{unseen} stays in new/\n{runs}"
        );
        for n in [b + 5, b + 6] {
            let (key, _) = split_name(&local[&id(n)].2);
            assert_eq!(
                key,
                format!("1800000001.M{n}P3.editor"),
                "{n} in {folder} is the editor's file, not a download\n{runs}"
            );
        }
    }
    // The half-written files: left alone, and alone in tmp/ (ferry left
    // nothing of its own there).
    for (path, content) in &partials {
        assert_eq!(
            std::fs::read(path).ok().as_ref(),
            Some(content),
            "{} was touched\n{runs}",
            path.display()
        );
        let tmp: Vec<_> = std::fs::read_dir(path.parent().expect("tmp"))
            .expect("list tmp")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(tmp, vec![path.clone()], "tmp/ holds only the partial file");
    }

    let third = setup.ferry(&["sync"]);
    assert_eq!(third.code, 0, "{third:?}");
    assert!(
        third.stdout.contains(NOTHING_DONE),
        "the third run still had work: {third:?}\n{runs}"
    );
    eprintln!(
        "{point:?}: during exit {}, {}; after: {}; {:?}",
        during.code,
        during.stdout.lines().last().unwrap_or_default().trim(),
        after.stdout.lines().last().unwrap_or_default().trim(),
        started.elapsed()
    );
}

/// The edits land a moment before each folder is listed: the listing
/// waits for the directories to settle and the run takes the edits in.
#[test]
fn local_edits_before_the_listing_lose_nothing_and_copy_nothing_twice() {
    local_edits_during_a_sync(EditPoint::BeforeTheListing);
}

/// The edits land once the plan is made: ferry's renames for the server's
/// flags find a flipped file (and apply to it) or a rewritten one gone
/// (named, exit 3); the next run re-pairs and finishes.
#[test]
fn local_edits_right_after_the_plan_lose_nothing_and_copy_nothing_twice() {
    local_edits_during_a_sync(EditPoint::AfterThePlan);
}

/// The edits race ferry's own renames in Archive.
#[test]
fn local_edits_racing_ferrys_own_renames_lose_nothing_and_copy_nothing_twice() {
    local_edits_during_a_sync(EditPoint::RacingFerrysRenames);
}

/// The edits land while ferry downloads into INBOX, Archive done.
#[test]
fn local_edits_while_ferry_downloads_lose_nothing_and_copy_nothing_twice() {
    local_edits_during_a_sync(EditPoint::WhileDownloading);
}

/// Message `n` as the user edited it: a line added to its body (so its
/// size changes too).
fn edited(n: u32) -> Vec<u8> {
    let text = String::from_utf8(lf(n)).expect("utf-8");
    text.replace(
        &format!("body of message {n}\n"),
        &format!("body of message {n}\nand a line the user added\n"),
    )
    .into_bytes()
}

/// The CRLF length of `lf`, as the server counts a message's size.
fn crlf_len(lf: &[u8]) -> u64 {
    (lf.len() + lf.iter().filter(|b| **b == b'\n').count()) as u64
}

/// Every copy of message `n` in `folder`: on the server and locally
/// (letters, content), each sorted.
fn copies(setup: &Setup, folder: &str, n: u32) -> (Vec<ServerCopy>, Vec<(String, Vec<u8>)>) {
    let mut server: Vec<ServerCopy> = (setup.dovecot.messages(USER, folder))
        .expect("doveadm fetch")
        .into_iter()
        .filter(|m| m.message_id == id(n))
        .map(|m| (m.flags, m.guid, m.size))
        .collect();
    server.sort();
    let mut local: Vec<(String, Vec<u8>)> = (setup.files(folder).into_iter())
        .filter(|(_, _, path)| file_id(path) == Some(id(n)))
        .map(|(_, info, path)| (info, std::fs::read(path).expect("read")))
        .collect();
    local.sort();
    (server, local)
}

/// Every message of INBOX but 3 is there once on each side, the server
/// copies of before unchanged.
fn assert_the_others_untouched(setup: &Setup, before: &BTreeMap<String, ServerCopy>, runs: &str) {
    let want: Vec<String> = [1, 2, 4, 5, 6, 9, 10].map(id).to_vec();
    let mut server: Vec<String> = Vec::new();
    for m in setup
        .dovecot
        .messages(USER, "INBOX")
        .expect("doveadm fetch")
    {
        if m.message_id == id(3) {
            continue;
        }
        if let Some(old) = before.get(&m.message_id) {
            assert_eq!(&m.guid, &old.1, "{} copied again\n{runs}", m.message_id);
        }
        server.push(m.message_id);
    }
    server.sort();
    let mut sorted_want = want.clone();
    sorted_want.sort();
    assert_eq!(server, sorted_want, "INBOX on the server\n{runs}");
    let mut local: Vec<String> = (setup.files("INBOX").into_iter())
        .filter_map(|(_, _, path)| file_id(&path))
        .filter(|m| *m != id(3))
        .collect();
    local.sort();
    assert_eq!(local, sorted_want, "INBOX locally\n{runs}");
}

/// The user edits message 3 in an editor (a line added to its body; a new
/// file under a new name with the same flags, the old one unlinked) right
/// after ferry planned a run that has other work to do (two downloads);
/// when `flagged_meanwhile`, another client flags message 3 on the server
/// at the same moment. Runs that sync, then two plain ones; returns them
/// with what the server held before the edit.
fn edit_content_during_a_sync(
    flagged_meanwhile: bool,
) -> (Setup, FaultProxy, [Run; 3], BTreeMap<String, ServerCopy>) {
    let (setup, proxy) = Setup::distant(DovecotOptions::default(), "");
    setup.append_messages("INBOX", 1..=6, &["\\Seen"]);
    setup.sync();
    let before = server_by_id(&setup, "INBOX");
    let uid = (setup
        .dovecot
        .messages(USER, "INBOX")
        .expect("doveadm fetch"))
    .into_iter()
    .find(|m| m.message_id == id(3))
    .map(|m| m.uid)
    .expect("message 3 on the server");
    setup.append_messages("INBOX", 9..=10, &["\\Seen"]);
    let mut client = setup.dovecot.client().expect("client");
    let content = edited(3);
    let mut watch = Watch::default();
    let mut edited_at_plan = false;
    let during = setup.ferry_acting(|line| {
        if !EditPoint::AfterThePlan.reached(line, &mut watch) || edited_at_plan {
            return;
        }
        rewrite_local(&setup, "INBOX", 3, "1800000001.M3P3.editor", Some(&content));
        if flagged_meanwhile {
            client
                .add_flags("INBOX", &[uid], &["\\Flagged"])
                .expect("store");
        }
        edited_at_plan = true;
    });
    assert!(
        edited_at_plan,
        "the plan's progress line never came: {:?}",
        Brief(&during)
    );
    assert_finished(&during, "the run edited under");
    let after = setup.ferry(&["sync"]);
    assert_eq!(after.code, 0, "{after:?}\nduring: {:?}", Brief(&during));
    let third = setup.ferry(&["sync"]);
    assert_eq!(third.code, 0, "{third:?}");
    (setup, proxy, [during, after, third], before)
}

/// What a mutt user expects of an edit (`e` on a message, or `edit` of a
/// draft) made while a sync runs: the new content reaches the server with
/// the message's flags, the old server copy goes (it is the same message,
/// superseded), nothing else moves, and the run after has nothing to do.
/// ferry does it on the run after the edit: one upload, one removal.
#[test]
fn a_message_edited_during_a_sync_replaces_its_server_copy() {
    let (setup, _proxy, runs, before) = edit_content_during_a_sync(false);
    let text = format!("{:?}\n{:?}\n{:?}", Brief(&runs[0]), runs[1], runs[2]);
    let new = edited(3);
    let (server, local) = copies(&setup, "INBOX", 3);
    assert_eq!(local, vec![("S".to_string(), new.clone())], "{text}");
    assert_eq!(
        server.len(),
        1,
        "one copy on the server: {server:?}\n{text}"
    );
    let (flags, guid, size) = &server[0];
    assert_eq!(flags, &["\\Seen"], "{text}");
    assert_eq!(
        *size,
        crlf_len(&new),
        "the edited content is on the server\n{text}"
    );
    assert_ne!(guid, &before[&id(3)].1, "a new server copy\n{text}");
    assert_the_others_untouched(&setup, &before, &text);
    // The run edited under downloads and leaves message 3 alone; the next
    // uploads the edit and removes the old copy, nothing else.
    assert_eq!(totals(&runs[0]), (2, 0, 0), "{text}");
    assert_eq!(totals(&runs[1]), (0, 1, 1), "{text}");
    assert!(runs[2].stdout.contains(NOTHING_DONE), "{text}");
}

/// The same edit while another client flags the message on the server:
/// the server's change wins over the removal of the old version, so both
/// versions stay, on both sides: the old one with the server's \Flagged
/// (downloaded again), the edited one uploaded. Nothing is lost, and the
/// run after has nothing to do.
#[test]
fn a_message_edited_while_flagged_on_the_server_keeps_both_versions() {
    let (setup, _proxy, runs, before) = edit_content_during_a_sync(true);
    let text = format!("{:?}\n{:?}\n{:?}", Brief(&runs[0]), runs[1], runs[2]);
    let new = edited(3);
    let (server, local) = copies(&setup, "INBOX", 3);
    assert_eq!(
        local,
        vec![("FS".to_string(), lf(3)), ("S".to_string(), new.clone())],
        "{text}"
    );
    assert_eq!(
        server.len(),
        2,
        "two copies on the server: {server:?}\n{text}"
    );
    let old = &before[&id(3)];
    let want: Vec<ServerCopy> = vec![
        (
            vec!["\\Flagged".to_string(), "\\Seen".to_string()],
            old.1.clone(),
            old.2,
        ),
        (
            vec!["\\Seen".to_string()],
            server[1].1.clone(),
            crlf_len(&new),
        ),
    ];
    assert_eq!(server, want, "{text}");
    assert_the_others_untouched(&setup, &before, &text);
    assert_eq!(totals(&runs[0]), (2, 0, 0), "{text}");
    assert_eq!(totals(&runs[1]), (1, 1, 0), "{text}");
    assert!(runs[2].stdout.contains(NOTHING_DONE), "{text}");
}
