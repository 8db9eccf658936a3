//! Delivery, flag renames, moves, removal, and their failures.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ferry_core::{Flag, Flags};
use ferry_maildir::crlf::{normalize, to_lf};
use ferry_maildir::fingerprint::fingerprint;
use ferry_maildir::{
    DirtyDirs, Entry, Error, Folder, MaildirName, NewMessage, ScanOptions, Step, StepHook, Subdir,
    fingerprint_file,
};

use crate::common::{message, message_files, names};

fn flags(letters: &str) -> Flags {
    Flags::from_maildir_info(letters)
}

#[test]
fn delivered_messages_read_back_as_they_came() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    let original = message(1, 200_000);
    let msg = NewMessage {
        flags: flags("FS"),
        internal_date: Some(1_600_000_000),
        ..NewMessage::new()
    };
    let delivered = folder
        .deliver(&msg, &original[..])
        .expect("deliver")
        .sync()
        .expect("sync");
    assert_eq!(delivered.entry.file_name(), format!("{}:2,FS", msg.key));
    assert_eq!(delivered.crlf_size, original.len() as u64);
    assert_eq!(delivered.fingerprint, fingerprint(&original).0);

    let path = folder.entry_path(&delivered.entry);
    let stored = fs::read(&path).expect("read");
    assert_eq!(stored, to_lf(&original));
    assert!(!stored.windows(2).any(|w| w == b"\r\n"), "stored with LF");
    assert_eq!(delivered.size, stored.len() as u64);
    let meta = fs::metadata(&path).expect("stat");
    assert_eq!(meta.mtime(), 1_600_000_000);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        fingerprint_file(&path).expect("fp"),
        (delivered.fingerprint, delivered.crlf_size)
    );

    let mut reader = folder.open_crlf(&delivered.entry).expect("open");
    assert_eq!(reader.crlf_len(), Some(original.len() as u64));
    let mut back = Vec::new();
    reader.read_to_end(&mut back).expect("read");
    assert_eq!(back, original);
    assert!(names(&folder.path().join("tmp")).is_empty());
}

#[test]
fn new_only_without_flags_and_batches_sync_once_per_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    let mut batch = DirtyDirs::new();
    for i in 0..20 {
        let msg = NewMessage {
            into_new: true,
            ..NewMessage::new()
        };
        let d = folder
            .deliver(&msg, &message(i, 100)[..])
            .expect("deliver")
            .defer(&mut batch);
        assert_eq!(d.entry.subdir(), Subdir::New);
        assert_eq!(d.entry.info(), None);
    }
    let flagged = NewMessage {
        into_new: true,
        flags: flags("F"),
        ..NewMessage::new()
    };
    let d = folder
        .deliver(&flagged, &b"x\r\n"[..])
        .expect("deliver")
        .defer(&mut batch);
    assert_eq!(d.entry.subdir(), Subdir::Cur, "a flag is never dropped");
    assert_eq!(batch.len(), 2);
    batch.sync().expect("sync");
    assert_eq!(names(&folder.path().join("new")).len(), 20);
}

#[test]
fn flag_renames_keep_the_key_and_unknown_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    fs::write(folder.path().join("cur/k:2,Sa"), b"x\n").expect("write");
    fs::write(folder.path().join("new/n"), b"x\n").expect("write");
    let k = Entry::parse(Subdir::Cur, "k:2,Sa").expect("name");
    let renamed = folder
        .set_flags(&k, &flags("FS"))
        .expect("rename")
        .sync()
        .expect("sync");
    assert_eq!(renamed.file_name(), "k:2,FSa");
    let again = folder
        .set_flags(&renamed, &flags("SF"))
        .expect("no-op")
        .sync()
        .expect("sync");
    assert_eq!(again, renamed);

    let n = Entry::parse(Subdir::New, "n").expect("name");
    let same = folder
        .set_flags(&n, &Flags::new())
        .expect("no-op")
        .sync()
        .expect("sync");
    assert_eq!(same, n, "unchanged flags leave new/ alone");
    let seen = folder
        .set_flags(&n, &flags("S"))
        .expect("rename")
        .sync()
        .expect("sync");
    assert_eq!(
        (seen.subdir(), seen.file_name()),
        (Subdir::Cur, "n:2,S".to_string())
    );
    assert_eq!(
        message_files(folder.path()),
        [
            ("cur".to_string(), "k:2,FSa".to_string()),
            ("cur".to_string(), "n:2,S".to_string())
        ]
    );
}

#[test]
fn renames_never_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    fs::write(folder.path().join("cur/k:2,S"), b"one\n").expect("write");
    fs::write(folder.path().join("cur/k:2,FS"), b"two\n").expect("write");
    let k = Entry::parse(Subdir::Cur, "k:2,S").expect("name");
    let err = folder
        .set_flags(&k, &flags("FS"))
        .expect_err("target exists");
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert_eq!(
        fs::read(folder.path().join("cur/k:2,FS")).expect("read"),
        b"two\n"
    );

    let msg = NewMessage {
        key: "k".into(),
        flags: flags("FS"),
        ..NewMessage::new()
    };
    let err = folder
        .deliver(&msg, &b"three\r\n"[..])
        .expect_err("target exists");
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert!(names(&folder.path().join("tmp")).is_empty());
}

#[test]
fn a_stale_tmp_file_of_the_same_key_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    fs::write(folder.path().join("tmp/retry"), b"half a mess").expect("write");
    let msg = NewMessage {
        key: "retry".into(),
        ..NewMessage::new()
    };
    let d = folder
        .deliver(&msg, &b"whole\r\n"[..])
        .expect("deliver")
        .sync()
        .expect("sync");
    assert_eq!(
        fs::read(folder.entry_path(&d.entry)).expect("read"),
        b"whole\n"
    );
    assert!(names(&folder.path().join("tmp")).is_empty());
    fs::remove_dir(folder.path().join("tmp")).expect("rmdir");
    let d = folder.deliver(&NewMessage::new(), &b"x\r\n"[..]);
    d.expect("tmp/ recreated").sync().expect("sync");
    let bad = NewMessage {
        key: "a:b".into(),
        ..NewMessage::new()
    };
    assert!(matches!(
        folder.deliver(&bad, &b""[..]),
        Err(Error::BadKey { .. })
    ));
}

#[test]
fn moves_keep_the_name_and_removal_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Folder::create(dir.path().join("a")).expect("create");
    let b = Folder::create(dir.path().join("b")).expect("create");
    let d = a.deliver(
        &NewMessage {
            flags: flags("S"),
            ..NewMessage::new()
        },
        &b"m\r\n"[..],
    );
    let entry = d.expect("deliver").sync().expect("sync").entry;
    let moved = a.move_to(&entry, &b).expect("move").sync().expect("sync");
    assert_eq!(moved, entry);
    assert!(b.entry_path(&moved).exists());
    assert!(!a.entry_path(&entry).exists());
    let err = a.move_to(&entry, &b).expect_err("already moved");
    assert!(err.is_rescan(), "{err}");
    b.remove(&moved).expect("remove").sync().expect("sync");
    assert!(message_files(b.path()).is_empty());
    assert!(b.remove(&moved).expect_err("gone").is_rescan());
}

/// A hook that fails the first `step` whose path contains `needle`.
fn fail_once(step: Step, needle: &'static str, errno: i32) -> (StepHook, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let hook: StepHook = Arc::new(move |s, path: &Path| {
        if s == step
            && path.to_string_lossy().contains(needle)
            && !flag.swap(true, Ordering::SeqCst)
        {
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(())
    });
    (hook, fired)
}

#[test]
fn moves_across_file_systems_copy_then_unlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Folder::create(dir.path().join("a")).expect("create");
    let b = Folder::create(dir.path().join("b")).expect("create");
    let original = message(7, 150_000);
    let msg = NewMessage {
        flags: flags("RS"),
        internal_date: Some(1_500_000_000),
        ..NewMessage::new()
    };
    let entry = a
        .deliver(&msg, &original[..])
        .expect("deliver")
        .sync()
        .expect("sync")
        .entry;
    let (hook, fired) = fail_once(Step::Rename, "/b/cur/", libc::EXDEV);
    let a = a.with_step_hook(hook);
    let moved = a.move_to(&entry, &b).expect("move").sync().expect("sync");
    assert!(fired.load(Ordering::SeqCst), "the EXDEV path ran");
    assert_eq!(moved.file_name(), entry.file_name());
    assert!(message_files(a.path()).is_empty());
    let path = b.entry_path(&moved);
    assert_eq!(fs::read(&path).expect("read"), to_lf(&original));
    assert_eq!(fs::metadata(&path).expect("stat").mtime(), 1_500_000_000);
    assert!(names(&b.path().join("tmp")).is_empty());
}

#[test]
fn disk_full_leaves_nothing_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("Work")).expect("create");
    let writes = Arc::new(AtomicUsize::new(0));
    let count = writes.clone();
    let hook: StepHook = Arc::new(move |step, _: &Path| {
        if step == Step::Write && count.fetch_add(1, Ordering::SeqCst) == 1 {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    });
    let folder = folder.with_step_hook(hook);
    let err = folder
        .deliver(&NewMessage::new(), &message(3, 300_000)[..])
        .expect_err("disk full");
    assert!(err.is_no_space(), "{err}");
    let text = err.to_string();
    assert!(text.contains("no space left"), "{text}");
    assert!(
        text.contains(&folder.path().display().to_string()),
        "{text}"
    );
    assert!(message_files(folder.path()).is_empty());
    assert!(names(&folder.path().join("tmp")).is_empty());
}

const TMPFS_CHILD: &str = "FERRY_MAILDIR_TMPFS_CHILD";

/// Disk full for real: a 64 KiB tmpfs in a user and mount namespace.
#[test]
fn disk_full_on_a_small_tmpfs() {
    let usable = Command::new("unshare")
        .args(["-Urm", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!(
            "skipped: `unshare -Urm` is not available here; the injected ENOSPC test covers this"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let script = r#"mount -t tmpfs -o size=64k ferry "$0" && exec "$1" ops::tmpfs_child --exact --ignored --nocapture"#;
    let out = Command::new("unshare")
        .args(["-Urm", "sh", "-c", script])
        .arg(dir.path())
        .arg(exe)
        .env(TMPFS_CHILD, dir.path())
        .output()
        .expect("run child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    let said = stderr.lines().find(|l| l.starts_with("TMPFS OK"));
    eprintln!("{}", said.expect("the child ran its checks"));
}

/// The child of [`disk_full_on_a_small_tmpfs`], run by it in a process of
/// its own.
#[test]
#[ignore = "helper: run by disk_full_on_a_small_tmpfs in a child process"]
fn tmpfs_child() {
    let Some(dir) = std::env::var_os(TMPFS_CHILD) else {
        return;
    };
    let folder = Folder::create(Path::new(&dir).join("Work")).expect("create");
    let err = folder
        .deliver(&NewMessage::new(), &message(1, 256 * 1024)[..])
        .expect_err("cannot fit");
    assert!(err.is_no_space(), "{err}");
    assert!(err.to_string().contains("Work"), "{err}");
    assert!(message_files(folder.path()).is_empty());
    assert!(
        names(&folder.path().join("tmp")).is_empty(),
        "the tmp file was removed"
    );
    // The space is free again: a small message fits.
    let small = folder
        .deliver(&NewMessage::new(), &message(2, 1000)[..])
        .expect("fits");
    small.sync().expect("sync");
    let listing = folder.scan_with(ScanOptions {
        wait_to_settle: false,
        ..ScanOptions::default()
    });
    assert_eq!(listing.expect("scan").len(), 1);
    eprintln!("TMPFS OK: {err}");
}

#[test]
fn names_from_a_listing_round_trip_through_entry() {
    let name = MaildirName::parse("k:2,S").expect("name");
    let entry = Entry::new(Subdir::Cur, name);
    assert_eq!(entry.rel_path(), Path::new("cur/k:2,S"));
    assert!(entry.flags().contains(&Flag::Seen));
    assert_eq!(normalize(b"a\n"), b"a\r\n");
}

#[test]
fn pushed_in_pieces_a_delivery_is_the_same_as_from_a_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    let original = message(7, 300_000);
    let msg = NewMessage {
        flags: flags("S"),
        internal_date: Some(1_650_000_000),
        ..NewMessage::new()
    };
    let mut delivery = folder.begin_delivery(&msg).expect("begin");
    assert_eq!(
        names(&folder.path().join("tmp")),
        std::slice::from_ref(&msg.key)
    );
    // Pieces of awkward sizes, cutting CRLFs in half.
    for piece in original.chunks(1_001) {
        delivery.write(piece).expect("write");
    }
    let delivered = delivery.finish().expect("finish").sync().expect("sync");
    assert_eq!(delivered.entry.file_name(), format!("{}:2,S", msg.key));
    assert_eq!(delivered.crlf_size, original.len() as u64);
    assert_eq!(delivered.fingerprint, fingerprint(&original).0);
    let path = folder.entry_path(&delivered.entry);
    assert_eq!(fs::read(&path).expect("read"), to_lf(&original));
    assert_eq!(fs::metadata(&path).expect("stat").mtime(), 1_650_000_000);
    assert!(names(&folder.path().join("tmp")).is_empty());
}

#[test]
fn a_dropped_or_failed_delivery_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    let mut dropped = folder.begin_delivery(&NewMessage::new()).expect("begin");
    dropped.write(&message(1, 200_000)).expect("write");
    drop(dropped);
    assert!(names(&folder.path().join("tmp")).is_empty());

    let (hook, fired) = fail_once(Step::Write, "/tmp/", libc::EIO);
    let failing = folder.clone().with_step_hook(hook);
    let mut delivery = failing.begin_delivery(&NewMessage::new()).expect("begin");
    let err = delivery
        .write(&message(2, 200_000))
        .expect_err("the write fails");
    assert!(fired.load(Ordering::SeqCst));
    assert!(err.to_string().contains("/tmp/"), "{err}");
    assert!(delivery.write(b"more").is_err(), "poisoned");
    assert!(delivery.finish().is_err(), "never published");
    assert!(message_files(folder.path()).is_empty());
    assert!(names(&folder.path().join("tmp")).is_empty());
}

#[test]
fn adopting_a_found_file_fsyncs_its_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    fs::write(folder.path().join("new/k"), b"x\n").expect("write");
    let entry = Entry::parse(Subdir::New, "k").expect("name");
    let mut batch = DirtyDirs::new();
    assert_eq!(folder.adopt(&entry).defer(&mut batch), entry);
    assert_eq!(batch.len(), 1);
    batch.sync().expect("sync");
}
