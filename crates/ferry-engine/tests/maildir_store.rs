//! The Maildir store against real files in temporary directories.
//!
//! [`exercise`] drives any [`Store`] through the trait alone, so that the
//! same round trip can run against the IMAP store; the other tests look at
//! the files as well.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_core::store::Snapshot;
use ferry_core::store::{BodyTarget, ErrorClass, FlagChange, Incoming, Store, StoreError};
use ferry_core::{Flags, MessageKey, MessageMeta, Uid};
use ferry_engine::maildir_store::{CHUNK, Error, MaildirStore};
use ferry_maildir::{Fingerprinter, Layout, Step, StepHook};

#[path = "support/exercise.rs"]
#[allow(dead_code)] // the IMAP store's tests use the rest of it
mod support;

use support::Collect;

/// A CRLF message of about `size` bytes, distinct per `seed`.
fn message(seed: usize, size: usize) -> Vec<u8> {
    let mut out = format!("Message-ID: <{seed}@test>\r\nSubject: test {seed}\r\n\r\n").into_bytes();
    let mut line = 0;
    while out.len() < size {
        out.extend_from_slice(format!("line {line} of {seed}, a lone \r here\r\n").as_bytes());
        line += 1;
    }
    out
}

fn flags(letters: &str) -> Flags {
    Flags::from_maildir_info(letters)
}

fn name(key: &str) -> MessageKey {
    MessageKey::Name(key.into())
}

fn incoming(seed: usize, body: &[u8], letters: &str) -> Incoming {
    Incoming {
        source: MessageKey::Uid(Uid::new(seed as u32 + 1).expect("non-zero")),
        flags: flags(letters),
        internal_date: Some(1_600_000_000 + seed as i64),
        size: body.len() as u64,
        message_id: None,
        planned_key: None,
    }
}

/// What `finish_writes` reports.
type Stored<E> = Vec<(MessageKey, Result<Option<MessageKey>, E>)>;

/// Writes `messages` into `folder` in pieces of 7,001 bytes (cutting
/// CRLFs in half), and returns what `finish_writes` reports.
fn write_all<S: Store>(
    store: &mut S,
    folder: &str,
    messages: &[(Incoming, Vec<u8>)],
) -> Stored<S::Error> {
    {
        let mut target = store.begin_writes(folder).expect("begin_writes");
        for (incoming, body) in messages {
            target.begin(incoming).expect("begin");
            for piece in body.chunks(7_001) {
                target.write(piece).expect("write");
            }
            target.end().expect("end");
        }
    }
    store.finish_writes().expect("finish_writes")
}

/// The new keys of a write, in order; every message must have succeeded.
fn new_keys<E: std::fmt::Debug>(results: Stored<E>) -> Vec<MessageKey> {
    results
        .into_iter()
        .map(|(_, r)| r.expect("stored").expect("a key is reported"))
        .collect()
}

fn read_all<S: Store>(store: &mut S, folder: &str, keys: &[MessageKey]) -> Collect {
    let mut target = Collect::default();
    let results = store
        .read_bodies(folder, keys, &mut target)
        .expect("read_bodies");
    for (key, result) in results {
        result.unwrap_or_else(|e| panic!("reading {key}: {e}"));
    }
    target
}

/// A round trip through the [`Store`] trait alone: folders, writes, reads,
/// flags, a move, removal.
fn exercise<S: Store>(store: &mut S) {
    store.create_folder("Work/Sub").expect("create");
    store.create_folder("Other").expect("create");
    let listed = names(store);
    for wanted in ["Work/Sub", "Other"] {
        assert!(listed.iter().any(|n| n == wanted), "{wanted} in {listed:?}");
    }

    let sent: Vec<(Incoming, Vec<u8>)> = [("", 300), ("S", 90_000), ("FS", 200_000)]
        .iter()
        .enumerate()
        .map(|(i, (letters, size))| {
            let body = message(i, *size);
            (incoming(i, &body, letters), body)
        })
        .collect();
    let keys = new_keys(write_all(store, "Work/Sub", &sent));
    assert_eq!(keys.len(), 3);

    let snap = store.snapshot("Work/Sub").expect("snapshot");
    assert_eq!(snap.messages.len(), 3);
    for (key, (incoming, _)) in keys.iter().zip(&sent) {
        let meta = snap
            .messages
            .iter()
            .find(|m| m.key == *key)
            .expect("listed");
        assert_eq!(meta.flags, incoming.flags);
    }

    let got = read_all(store, "Work/Sub", &keys);
    assert_eq!(got.ended, 3);
    assert!(got.largest_chunk <= CHUNK);
    for (i, ((incoming, body), (read, bytes))) in sent.iter().zip(&got.messages).enumerate() {
        assert!(bytes == body, "the same CRLF bytes");
        assert_eq!(read.size, body.len() as u64);
        assert_eq!(read.flags, incoming.flags);
        assert_eq!(read.internal_date, incoming.internal_date);
        assert_eq!(read.message_id, Some(format!("<{i}@test>")));
    }

    let changes = [
        FlagChange {
            key: keys[0].clone(),
            add: flags("F"),
            remove: Flags::new(),
        },
        FlagChange {
            key: keys[1].clone(),
            add: Flags::new(),
            remove: flags("S"),
        },
    ];
    for result in store.set_flags("Work/Sub", &changes).expect("set_flags") {
        result.expect("flag change");
    }
    let snap = store.snapshot("Work/Sub").expect("snapshot");
    let flags_of = |key: &MessageKey| {
        let meta = snap.messages.iter().find(|m| m.key == *key);
        meta.expect("listed").flags.clone()
    };
    assert_eq!(flags_of(&keys[0]), flags("F"));
    assert_eq!(flags_of(&keys[1]), Flags::new());

    let moved = store
        .move_messages("Work/Sub", &keys[2..], "Other")
        .expect("move");
    let moved_key = moved
        .into_iter()
        .next()
        .expect("one result")
        .expect("moved")
        .expect("a key is reported");
    let other = store.snapshot("Other").expect("snapshot");
    assert_eq!(other.messages.len(), 1);
    assert_eq!(other.messages[0].key, moved_key);
    assert_eq!(other.messages[0].flags, flags("FS"));

    for _ in 0..2 {
        let removed = store.remove("Work/Sub", &keys[1..2]).expect("remove");
        assert!(removed.iter().all(Result::is_ok), "removing twice is fine");
    }
    let mut target = Collect::default();
    let results = store
        .read_bodies("Work/Sub", &keys[..2], &mut target)
        .expect("read_bodies");
    assert!(results[0].1.is_ok());
    let gone = results[1].1.as_ref().expect_err("removed");
    assert_eq!(gone.class(), ErrorClass::Message);
    assert_eq!(target.messages.len(), 1);
}

#[test]
fn the_store_round_trip_in_both_layouts() {
    for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = MaildirStore::create(dir.path(), layout).expect("store");
        exercise(&mut store);
    }
}

/// The files of a folder's `new/` and `cur/`, as `sub/name`, sorted.
fn files(folder: &Path) -> Vec<String> {
    let mut all = Vec::new();
    for sub in ["new", "cur"] {
        for item in fs::read_dir(folder.join(sub)).expect("readable") {
            let name = item.expect("entry").file_name();
            all.push(format!("{sub}/{}", name.to_string_lossy()));
        }
    }
    all.sort();
    all
}

fn tmp_is_empty(folder: &Path) -> bool {
    fs::read_dir(folder.join("tmp"))
        .expect("tmp/")
        .next()
        .is_none()
}

fn names<S: Store>(store: &mut S) -> Vec<String> {
    let folders = store.list_folders().expect("list");
    folders.into_iter().map(|f| f.name).collect()
}

/// Names in the order `list_folders` gives them: by directory.
fn by_dir(layout: Layout, names: &[&str]) -> Vec<String> {
    let mut by_dir: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            let dir = match (layout, *n) {
                (Layout::MaildirPlusPlus, "INBOX") => String::new(),
                (Layout::MaildirPlusPlus, n) => format!(".{}", n.replace('/', ".")),
                (Layout::Fs, n) => n.to_string(),
            };
            (dir, n.to_string())
        })
        .collect();
    by_dir.sort();
    by_dir.into_iter().map(|(_, n)| n).collect()
}

#[test]
fn folders_in_both_layouts() {
    for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(MaildirStore::open(dir.path().join("missing"), layout).is_err());
        let mut store = MaildirStore::create(dir.path(), layout).expect("store");
        for folder in ["INBOX", "A", "A/B", "Full"] {
            store.create_folder(folder).expect("create");
        }
        store.create_folder("A").expect("creating again is fine");
        let all = ["INBOX", "A", "A/B", "Full"];
        assert_eq!(names(&mut store), by_dir(layout, &all), "{layout:?}");

        store.rename_folder("A", "C").expect("rename");
        store
            .rename_folder("A", "C")
            .expect("renaming again is fine");
        let after: &[&str] = match layout {
            Layout::Fs => &["INBOX", "C", "C/B", "Full"],
            Layout::MaildirPlusPlus => &["INBOX", "A/B", "C", "Full"],
        };
        assert_eq!(names(&mut store), by_dir(layout, after), "{layout:?}");
        let err = store.rename_folder("Nope", "Nope2").expect_err("missing");
        assert!(matches!(err, Error::NoFolder { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Folder);
        assert!(matches!(
            store.rename_folder("INBOX", "Old"),
            Err(Error::Inbox { .. })
        ));

        let full = vec![(incoming(0, b"x\r\n", "S"), b"x\r\n".to_vec())];
        new_keys(write_all(&mut store, "Full", &full));
        let err = store.delete_folder("Full").expect_err("holds a message");
        assert_eq!(err.class(), ErrorClass::Folder);
        assert!(err.to_string().contains("not empty"), "{err}");
        assert!(matches!(
            store.delete_folder("INBOX"),
            Err(Error::Inbox { .. })
        ));
        store.delete_folder("C").expect("delete");
        store.delete_folder("C").expect("deleting again is fine");
        let left: &[&str] = match layout {
            // C/B was inside C and stays, in a directory that is no folder.
            Layout::Fs => &["INBOX", "C/B", "Full"],
            Layout::MaildirPlusPlus => &["INBOX", "A/B", "Full"],
        };
        assert_eq!(names(&mut store), by_dir(layout, left), "{layout:?}");
        let err = store.snapshot("C").expect_err("deleted");
        assert_eq!(err.class(), ErrorClass::Folder);
    }
}

#[test]
fn listing_reports_settled_stamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    std::thread::sleep(std::time::Duration::from_millis(150));
    let listed = store.list_folders().expect("list");
    let stamps = listed[0].markers.stamps.expect("settled");
    let snap = store.snapshot("INBOX").expect("snapshot");
    assert_eq!(
        snap.markers.stamps,
        Some(stamps),
        "unchanged: the same proof"
    );
    assert_eq!(listed[0].markers.messages, None);
    assert!(listed[0].selectable && listed[0].identity.validity.is_none());
}

fn folder_dir(store: &MaildirStore, folder: &str) -> PathBuf {
    match store.tree().layout() {
        Layout::Fs => store.tree().root().join(folder),
        Layout::MaildirPlusPlus => store.tree().root().join(format!(".{folder}")),
    }
}

#[test]
fn snapshots_read_keys_flags_and_crlf_sizes_from_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::MaildirPlusPlus).expect("store");
    store.create_folder("INBOX").expect("create");
    let root = store.tree().root().to_path_buf();
    for file in [
        "cur/1700000000.M1P1.host,S=10,W=12:2,FS",
        "cur/1700000001.M2P1.host:2,Sa",
        "new/1700000002.M3P1.host,W=x1",
        "cur/dup:2,S",
        "cur/dup:2,FS",
        "cur/.hidden",
    ] {
        fs::write(root.join(file), b"x\n").expect("write");
    }
    let snap = store.snapshot("INBOX").expect("snapshot");
    let seen: Vec<(String, String, Option<u64>)> = snap
        .messages
        .iter()
        .map(|m| (m.key.to_string(), m.flags.to_maildir_info(), m.size))
        .collect();
    let expected = [
        ("1700000000.M1P1.host,S=10,W=12", "FS", Some(12)),
        ("1700000001.M2P1.host", "S", None),
        ("1700000002.M3P1.host,W=x1", "", None),
        ("dup", "FS", None),
    ];
    let expected: Vec<(String, String, Option<u64>)> = expected
        .iter()
        .map(|(k, f, s)| (k.to_string(), f.to_string(), *s))
        .collect();
    assert_eq!(seen, expected);
    assert!(snap.messages.iter().all(|m| m.message_id.is_none()));
    // Just written: the quick listing does not wait and says it may have
    // missed a rename; the settled one waits and is proof that lets a later
    // run skip the folder.
    assert!(snap.unsettled && snap.markers.stamps.is_none());
    let settled = store.settled_snapshot("INBOX").expect("snapshot");
    assert!(!settled.unsettled && settled.markers.stamps.is_some());
    assert_eq!(settled.messages, snap.messages);
}

#[test]
fn written_messages_are_stored_with_lf_and_read_back_with_crlf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let sent: Vec<(Incoming, Vec<u8>)> = [("", 500), ("S", 70_000), ("DFPRST", 150_000)]
        .iter()
        .enumerate()
        .map(|(i, (letters, size))| {
            let body = message(i, *size);
            (incoming(i, &body, letters), body)
        })
        .collect();
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    let inbox = folder_dir(&store, "INBOX");
    let on_disk = files(&inbox);
    let key = |i: usize| keys[i].to_string();
    let mut expected = vec![
        format!("new/{}", key(0)),
        format!("cur/{}:2,S", key(1)),
        format!("cur/{}:2,DFPRST", key(2)),
    ];
    expected.sort();
    assert_eq!(on_disk, expected);
    assert!(tmp_is_empty(&inbox));
    for (i, (incoming, body)) in sent.iter().enumerate() {
        let file = on_disk
            .iter()
            .find(|f| f.contains(&key(i)))
            .expect("stored");
        let path = inbox.join(file);
        let stored = fs::read(&path).expect("read");
        assert!(!stored.windows(2).any(|w| w == b"\r\n"), "stored with LF");
        assert_eq!(
            stored.len(),
            body.len() - body.windows(2).filter(|w| *w == b"\r\n").count()
        );
        let mtime = fs::metadata(&path).expect("stat").mtime();
        assert_eq!(Some(mtime), incoming.internal_date);
    }
    let got = read_all(&mut store, "INBOX", &keys);
    for ((incoming, body), (read, bytes)) in sent.iter().zip(&got.messages) {
        assert!(bytes == body, "the same CRLF bytes");
        assert_eq!(read.flags, incoming.flags);
        assert_eq!(read.internal_date, incoming.internal_date);
        assert_eq!(read.size, body.len() as u64);
    }
}

#[test]
fn a_planned_key_is_used_and_a_replay_finds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let inbox = folder_dir(&store, "INBOX");
    let planned = store
        .fresh_key()
        .expect("Maildir keys are chosen by the caller");
    let once = std::slice::from_ref(&planned);
    let body = message(1, 5_000);
    let mut msg = incoming(1, &body, "S");
    msg.planned_key = Some(planned.clone());
    let sent = vec![(msg, body)];
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    assert_eq!(keys, once);
    assert_eq!(files(&inbox), [format!("cur/{planned}:2,S")]);

    // The same delivery again, by this store and by a fresh one (after a
    // crash), even after a mail reader changed the flags: no duplicate.
    assert_eq!(new_keys(write_all(&mut store, "INBOX", &sent)), once);
    let mut fresh = MaildirStore::open(dir.path(), Layout::Fs).expect("store");
    assert_eq!(new_keys(write_all(&mut fresh, "INBOX", &sent)), once);
    let renamed = inbox.join(format!("cur/{planned}:2,FS"));
    fs::rename(inbox.join(format!("cur/{planned}:2,S")), &renamed).expect("rename");
    let mut after = MaildirStore::open(dir.path(), Layout::Fs).expect("store");
    assert_eq!(new_keys(write_all(&mut after, "INBOX", &sent)), once);
    assert_eq!(files(&inbox), [format!("cur/{planned}:2,FS")]);
    assert!(tmp_is_empty(&inbox));

    // Keys that cannot be file names fail alone and leave nothing.
    let mut bad = sent.clone();
    bad[0].0.planned_key = Some(name("a:b"));
    bad.push((incoming(2, b"ok\r\n", ""), b"ok\r\n".to_vec()));
    bad.push((incoming(3, b"uid\r\n", ""), b"uid\r\n".to_vec()));
    bad[2].0.planned_key = Some(MessageKey::Uid(Uid::new(7).expect("non-zero")));
    let results = write_all(&mut after, "INBOX", &bad);
    assert_eq!(results.len(), 3);
    for i in [0, 2] {
        let err = results[i].1.as_ref().expect_err("bad key");
        assert_eq!(err.class(), ErrorClass::Message, "{err}");
    }
    assert!(results[1].1.is_ok());
    assert_eq!(files(&inbox).len(), 2);
    assert!(tmp_is_empty(&inbox));
}

/// A 60 MiB message, made and checked piece by piece.
const BIG: usize = 60 * 1024 * 1024;

/// The `n`th 1 MiB piece of the big message (CRLF lines).
fn big_piece(n: usize) -> Vec<u8> {
    let line = format!("{n:07} the quick brown fox jumps over the lazy dog 0123456789\r\n");
    line.as_bytes().repeat(1024 * 1024 / line.len() + 1)[..1024 * 1024].to_vec()
}

/// A target that only fingerprints what it is given.
#[derive(Default)]
struct Measure {
    fp: Fingerprinter,
    announced: u64,
    received: u64,
    largest_chunk: usize,
}

impl BodyTarget for Measure {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        self.announced = message.size;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.largest_chunk = self.largest_chunk.max(data.len());
        self.received += data.len() as u64;
        self.fp.update(data);
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_60_mib_message_streams_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("Big").expect("create");
    let mut sent = Fingerprinter::new();
    let msg = Incoming {
        size: BIG as u64,
        ..incoming(1, b"", "S")
    };
    {
        let mut target = store.begin_writes("Big").expect("begin_writes");
        target.begin(&msg).expect("begin");
        for n in 0..BIG / (1024 * 1024) {
            let piece = big_piece(n);
            sent.update(&piece);
            target.write(&piece).expect("write");
        }
        target.end().expect("end");
    }
    let keys = new_keys(store.finish_writes().expect("finish"));
    let mut got = Measure::default();
    let results = store.read_bodies("Big", &keys, &mut got).expect("read");
    assert!(results[0].1.is_ok());
    assert!(got.largest_chunk <= CHUNK, "{}", got.largest_chunk);
    assert_eq!((got.announced, got.received), (BIG as u64, BIG as u64));
    assert_eq!(got.fp.finish(), sent.finish());
}

#[test]
fn flags_follow_a_file_a_mail_reader_renamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let inbox = folder_dir(&store, "INBOX");
    let sent = vec![(incoming(1, b"hi\r\n", ""), b"hi\r\n".to_vec())];
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    let key = keys[0].to_string();
    store.snapshot("INBOX").expect("snapshot"); // remembers new/KEY
    // mutt reads it: new/KEY -> cur/KEY:2,S.
    fs::rename(
        inbox.join(format!("new/{key}")),
        inbox.join(format!("cur/{key}:2,S")),
    )
    .expect("rename");
    let change = FlagChange {
        key: keys[0].clone(),
        add: flags("F"),
        remove: Flags::new(),
    };
    let results = store
        .set_flags("INBOX", std::slice::from_ref(&change))
        .expect("set");
    results[0].as_ref().expect("found after a rescan");
    assert_eq!(files(&inbox), [format!("cur/{key}:2,FS")]);

    fs::remove_file(inbox.join(format!("cur/{key}:2,FS"))).expect("rm");
    let results = store.set_flags("INBOX", &[change]).expect("set");
    let err = results[0].as_ref().expect_err("gone");
    assert!(matches!(err, Error::NoMessage { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Message);
}

/// A listing cut down to what the plan touches (`keep_only`) still finds
/// the kept messages after many other folders were listed, and finds the
/// others by listing again, also after a mail reader renamed them.
#[test]
fn a_listing_kept_for_the_plan_finds_kept_and_dropped_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let inbox = folder_dir(&store, "INBOX");
    let sent: Vec<_> = (1..=3)
        .map(|n| (incoming(n, b"hi\r\n", ""), b"hi\r\n".to_vec()))
        .collect();
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    store.snapshot("INBOX").expect("snapshot");
    let kept = keys[0].clone();
    store.keep_only("INBOX", &[kept.clone()].into_iter().collect());
    // Many more folders listed: whole listings come and go, the kept one stays.
    for n in 0..8 {
        let folder = format!("F{n}");
        store.create_folder(&folder).expect("create");
        store.snapshot(&folder).expect("snapshot");
    }
    let dropped = keys[1].to_string();
    fs::rename(
        inbox.join(format!("new/{dropped}")),
        inbox.join(format!("cur/{dropped}:2,S")),
    )
    .expect("rename");
    let changes: Vec<FlagChange> = [&keys[0], &keys[1]]
        .into_iter()
        .map(|key| FlagChange {
            key: key.clone(),
            add: flags("F"),
            remove: Flags::new(),
        })
        .collect();
    let results = store.set_flags("INBOX", &changes).expect("set");
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let mut want = vec![
        format!("cur/{}:2,F", keys[0]),
        format!("cur/{dropped}:2,FS"),
        format!("new/{}", keys[2]),
    ];
    want.sort();
    assert_eq!(files(&inbox), want);
}

#[test]
fn removing_twice_is_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let sent = vec![(incoming(1, b"hi\r\n", "S"), b"hi\r\n".to_vec())];
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    for _ in 0..2 {
        let results = store.remove("INBOX", &keys).expect("remove");
        assert!(results[0].is_ok());
    }
    assert!(files(&folder_dir(&store, "INBOX")).is_empty());
    let uid = [MessageKey::Uid(Uid::new(3).expect("non-zero"))];
    let results = store.remove("INBOX", &uid).expect("remove");
    let err = results[0].as_ref().expect_err("not a Maildir key");
    assert!(matches!(err, Error::NotAName { .. }), "{err}");
}

#[test]
fn moves_keep_the_key_and_the_inode() {
    for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = MaildirStore::create(dir.path(), layout).expect("store");
        store.create_folder("A").expect("create");
        store.create_folder("B").expect("create");
        let sent = vec![(incoming(1, b"hi\r\n", "S"), b"hi\r\n".to_vec())];
        let keys = new_keys(write_all(&mut store, "A", &sent));
        let key = keys[0].to_string();
        let (a, b) = (folder_dir(&store, "A"), folder_dir(&store, "B"));
        let file = format!("cur/{key}:2,S");
        let inode = fs::metadata(a.join(&file)).expect("stat").ino();
        for _ in 0..2 {
            let moved = store.move_messages("A", &keys, "B").expect("move");
            let new_key = moved[0].as_ref().expect("moved (or moved already)");
            assert_eq!(new_key.as_ref(), Some(&keys[0]));
        }
        assert!(files(&a).is_empty());
        assert_eq!(files(&b), std::slice::from_ref(&file));
        assert_eq!(fs::metadata(b.join(&file)).expect("stat").ino(), inode);

        let missing = [name("no-such-key")];
        let moved = store.move_messages("A", &missing, "B").expect("move");
        let err = moved[0].as_ref().expect_err("missing");
        assert_eq!(err.class(), ErrorClass::Message);
        let err = store
            .move_messages("A", &keys, "Nope")
            .expect_err("no target");
        assert_eq!(err.class(), ErrorClass::Folder);
    }
}

#[test]
fn a_vanished_file_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let sent: Vec<(Incoming, Vec<u8>)> = (0..3)
        .map(|i| {
            let body = message(i, 1_000);
            (incoming(i, &body, "S"), body)
        })
        .collect();
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    let inbox = folder_dir(&store, "INBOX");
    fs::remove_file(inbox.join(format!("cur/{}:2,S", keys[1]))).expect("rm");
    let mut target = Collect::default();
    let results = store
        .read_bodies("INBOX", &keys, &mut target)
        .expect("read_bodies");
    assert!(results[0].1.is_ok() && results[2].1.is_ok());
    let err = results[1].1.as_ref().expect_err("vanished");
    assert_eq!(err.class(), ErrorClass::Message, "{err}");
    assert_eq!(results[1].0, keys[1]);
    assert_eq!(target.messages.len(), 2);
    assert!(target.messages[1].1 == sent[2].1);
}

/// A target that fails on its first write.
struct Broken;

impl BodyTarget for Broken {
    fn begin(&mut self, _: &Incoming) -> io::Result<()> {
        Ok(())
    }

    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("the connection dropped"))
    }

    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_target_ends_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let sent = vec![(incoming(1, b"hi\r\n", "S"), b"hi\r\n".to_vec())];
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    let err = store
        .read_bodies("INBOX", &keys, &mut Broken)
        .expect_err("target failed");
    assert!(matches!(err, Error::Target { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Store);
}

#[test]
fn a_message_begun_and_never_ended_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let inbox = folder_dir(&store, "INBOX");
    let (first, second) = (incoming(1, b"", ""), incoming(2, b"b\r\n", "S"));
    {
        let mut target = store.begin_writes("INBOX").expect("begin_writes");
        target.begin(&first).expect("begin");
        target.write(&message(1, 100_000)).expect("write");
        target.begin(&second).expect("begin the next");
        target.write(b"b\r\n").expect("write");
        target.end().expect("end");
        target.begin(&first).expect("begin again");
        target.write(b"half").expect("write");
        // Dropped in the middle of a message.
    }
    let results = store.finish_writes().expect("finish");
    let sources: Vec<&MessageKey> = results.iter().map(|(k, _)| k).collect();
    assert_eq!(sources, [&first.source, &second.source, &first.source]);
    for i in [0, 2] {
        let err = results[i].1.as_ref().expect_err("unfinished");
        assert!(matches!(err, Error::Unfinished { .. }), "{err}");
    }
    assert!(results[1].1.is_ok());
    assert_eq!(files(&inbox).len(), 1);
    assert!(tmp_is_empty(&inbox));
    assert!(store.finish_writes().expect("nothing pending").is_empty());
}

#[test]
fn a_full_disk_stops_the_sender_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = Arc::new(AtomicUsize::new(0));
    let count = writes.clone();
    let hook: StepHook = Arc::new(move |step, _: &Path| {
        if step == Step::Write && count.fetch_add(1, Ordering::SeqCst) == 1 {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    });
    let mut store = MaildirStore::create(dir.path(), Layout::Fs)
        .expect("store")
        .with_step_hook(hook);
    store.create_folder("INBOX").expect("create");
    let body = message(1, 400_000);
    // Deliveries are written on worker threads: the sender learns of the
    // failure at the latest when it begins a message after it came back.
    // Here the later messages have a bad planned key: they fail alone,
    // writing nothing.
    let stopped = {
        let mut target = store.begin_writes("INBOX").expect("begin_writes");
        target.begin(&incoming(1, &body, "S")).expect("begin");
        let mut stopped = body
            .chunks(CHUNK)
            .map(|piece| target.write(piece))
            .find(Result::is_err)
            .map(drop);
        stopped = stopped.or(target.end().err().map(drop));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut bad = incoming(2, b"x\r\n", "");
        bad.planned_key = Some(MessageKey::Name("bad/key".into()));
        while stopped.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            stopped = target.begin(&bad).err().map(drop);
            if stopped.is_none() {
                target.end().expect("a bad key fails alone");
            }
        }
        stopped
    };
    assert!(stopped.is_some(), "the sender is told to stop");
    let results = store.finish_writes().expect("finish");
    let err = results[0].1.as_ref().expect_err("disk full");
    assert_eq!(err.class(), ErrorClass::Store, "{err}");
    assert!(err.to_string().contains("no space"), "{err}");
    let inbox = folder_dir(&store, "INBOX");
    assert!(files(&inbox).is_empty());
    assert!(tmp_is_empty(&inbox));
}

/// A target that appends to a file when a message begins: the file
/// changes while it is read.
struct Meddle(PathBuf);

impl BodyTarget for Meddle {
    fn begin(&mut self, _: &Incoming) -> io::Result<()> {
        let mut file = fs::OpenOptions::new().append(true).open(&self.0)?;
        io::Write::write_all(&mut file, b"grown\n")
    }

    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_file_that_changes_while_read_ends_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let sent = vec![(incoming(1, b"hi\r\n", "S"), b"hi\r\n".to_vec())];
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    let path = folder_dir(&store, "INBOX").join(format!("cur/{}:2,S", keys[0]));
    let err = store
        .read_bodies("INBOX", &keys, &mut Meddle(path))
        .expect_err("changed");
    assert!(matches!(err, Error::Changed { announced: 4, .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Folder);
}

/// A folder the engine proved unchanged is not listed: the store acts on
/// the files the state implies (`cur/KEY:2,FLAGS`; unflagged, `new/KEY` as
/// delivered or `cur/KEY:2,` as a mail reader leaves it once seen), and
/// finds one a mail reader renamed since by listing the folder then.
#[test]
fn a_folder_known_unchanged_is_acted_on_without_a_listing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MaildirStore::create(dir.path(), Layout::Fs).expect("store");
    store.create_folder("INBOX").expect("create");
    let inbox = folder_dir(&store, "INBOX");
    let sent: Vec<_> = [(1, ""), (2, "S"), (3, ""), (4, "")]
        .into_iter()
        .map(|(n, letters)| (incoming(n, b"hi\r\n", letters), b"hi\r\n".to_vec()))
        .collect();
    let keys = new_keys(write_all(&mut store, "INBOX", &sent));
    // A new store: nothing listed, nothing remembered.
    let mut store = MaildirStore::open(dir.path(), Layout::Fs).expect("store");
    let (unread, read, renamed, seen) = (&keys[0], &keys[1], &keys[2], &keys[3]);
    // A mail reader saw the fourth (new/ to cur/, still unread).
    fs::rename(
        inbox.join(format!("new/{seen}")),
        inbox.join(format!("cur/{seen}:2,")),
    )
    .expect("rename");
    // A mail reader read the third behind the state's back.
    fs::rename(
        inbox.join(format!("new/{renamed}")),
        inbox.join(format!("cur/{renamed}:2,S")),
    )
    .expect("rename");
    let snapshot = Snapshot {
        identity: Default::default(),
        markers: Default::default(),
        messages: [(unread, ""), (read, "S"), (renamed, ""), (seen, "")]
            .into_iter()
            .map(|(key, letters)| MessageMeta::new(key.clone(), flags(letters)))
            .collect(),
        unsettled: false,
    };
    store.known_unchanged("INBOX", &snapshot);
    let flag = |key: &MessageKey| FlagChange {
        key: key.clone(),
        add: flags("F"),
        remove: Flags::new(),
    };
    let results = store
        .set_flags("INBOX", &[flag(unread), flag(read), flag(seen)])
        .expect("set");
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(store.listings(), 0, "named from the state, not listed");
    let results = store.set_flags("INBOX", &[flag(renamed)]).expect("set");
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(store.listings(), 1, "not where the state said: listed");
    let mut want = vec![
        format!("cur/{unread}:2,F"),
        format!("cur/{read}:2,FS"),
        format!("cur/{renamed}:2,FS"),
        format!("cur/{seen}:2,F"),
    ];
    want.sort();
    assert_eq!(files(&inbox), want);
}
