//! Listing folders: what is a message, duplicates, stamps, concurrency.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_core::Flag;
use ferry_maildir::{Folder, ScanOptions, Subdir, scan_all};

use crate::common::settle;

fn touch(path: &std::path::Path) {
    fs::write(path, b"x\n").expect("write");
}

#[test]
fn lists_messages_skips_the_rest_and_never_reads_tmp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    let p = folder.path();
    touch(&p.join("new/fresh"));
    touch(&p.join("cur/seen:2,S"));
    touch(&p.join("cur/dovecot:2,Sab"));
    touch(&p.join("cur/.hidden"));
    touch(&p.join("cur/:2,S"));
    touch(&p.join("tmp/in-flight"));
    let not_utf8 = std::ffi::OsStr::from_bytes(b"bad\xff:2,S");
    touch(&p.join("cur").join(not_utf8));
    settle();
    let listing = folder.scan().expect("scan");
    let keys: Vec<&str> = listing.messages().iter().map(|e| e.key()).collect();
    assert_eq!(keys, ["dovecot", "fresh", "seen"]);
    assert_eq!(listing.get("fresh").map(|e| e.subdir()), Some(Subdir::New));
    let dovecot = listing.get("dovecot").expect("listed");
    assert_eq!(dovecot.info(), Some("Sab"));
    assert!(dovecot.flags().contains(&Flag::Seen));
    assert_eq!(listing.skipped().len(), 3, "{:?}", listing.skipped());
    assert!(listing.is_stable());
    assert!(listing.duplicates().is_empty());
}

#[test]
fn a_key_twice_is_listed_once_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    touch(&folder.path().join("new/k"));
    touch(&folder.path().join("cur/k:2,S"));
    touch(&folder.path().join("cur/k:2,RS"));
    let changed = Instant::now();
    let listing = folder
        .scan_with(ScanOptions {
            wait_to_settle: false,
            ..ScanOptions::default()
        })
        .expect("scan");
    assert_eq!(listing.len(), 1);
    if changed.elapsed() < Duration::from_millis(80) {
        // (A loaded machine may take longer than the margin to get here.)
        let attempts = listing.attempts();
        assert_eq!(attempts, 1, "a quiet, unsettled folder is not listed again");
        assert!(!listing.is_stable());
    }
    assert_eq!(listing.messages()[0].file_name(), "k:2,RS");
    assert_eq!(listing.duplicates().len(), 2);
}

#[test]
fn stable_listings_prove_an_unchanged_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    touch(&folder.path().join("cur/a:2,"));
    let changed = Instant::now();
    // Just changed: a scan waits until the stamps are old enough to prove
    // anything, then lists again.
    let fresh = changed.elapsed() < Duration::from_millis(80);
    let listing = folder.scan().expect("scan");
    assert!(listing.is_stable());
    if fresh {
        assert!(listing.attempts() >= 2, "attempts {}", listing.attempts());
    }
    let proof = listing.proof().expect("stable listings have proof");
    assert!(folder.unchanged_since(proof).expect("stat"));
    // Without waiting, a fresh change is not proof of anything.
    fs::rename(
        folder.path().join("cur/a:2,"),
        folder.path().join("cur/a:2,S"),
    )
    .expect("rename");
    let changed = Instant::now();
    assert!(!folder.unchanged_since(proof).expect("stat"));
    let quick = ScanOptions {
        max_attempts: 1,
        wait_to_settle: false,
    };
    let fresh = changed.elapsed() < Duration::from_millis(80);
    let unsettled = folder.scan_with(quick).expect("scan");
    if fresh {
        assert!(!unsettled.is_stable());
    }
    assert!(unsettled.proof().is_none());
    assert_eq!(unsettled.len(), 1);
}

#[test]
fn a_vanished_file_means_rescan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    touch(&folder.path().join("cur/a:2,S"));
    let listing = folder
        .scan_with(ScanOptions {
            wait_to_settle: false,
            ..ScanOptions::default()
        })
        .expect("scan");
    let entry = listing.get("a").expect("listed").clone();
    fs::rename(
        folder.path().join("cur/a:2,S"),
        folder.path().join("cur/a:2,FS"),
    )
    .expect("rename");
    let err = folder.open_message(&entry).expect_err("renamed away");
    assert!(err.is_rescan(), "{err}");
    let err = folder
        .set_flags(&entry, &Default::default())
        .expect_err("renamed away");
    assert!(err.is_rescan(), "{err}");
    assert!(err.to_string().contains("a:2,S"), "{err}");
    let gone = Folder::open(dir.path().join("nope")).expect_err("no folder");
    assert!(matches!(gone, ferry_maildir::Error::NotAFolder { .. }));
}

#[test]
fn scans_many_folders_in_parallel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folders: Vec<Folder> = (0..8)
        .map(|i| {
            let f = Folder::create(dir.path().join(format!("f{i}"))).expect("create");
            for m in 0..=i {
                touch(&f.path().join(format!("cur/m{m}:2,S")));
            }
            f
        })
        .collect();
    fs::remove_dir(folders[3].path().join("new")).expect("break one");
    let results = scan_all(&folders);
    for (i, (folder, result)) in results.iter().enumerate() {
        assert_eq!(folder.path(), folders[i].path());
        match result {
            Ok(listing) => assert_eq!(listing.len(), i + 1),
            Err(e) => assert!(i == 3 && e.is_rescan(), "{i}: {e}"),
        }
    }
}

/// A thread renames messages (new -> cur, flag flips in cur/) while the main
/// thread scans: every scan lists every message exactly once and invents
/// none.
#[test]
fn scanning_under_concurrent_renames_loses_and_invents_nothing() {
    const MESSAGES: usize = 500;
    const SCANS: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("f")).expect("create");
    let keys: BTreeSet<String> = (0..MESSAGES)
        .map(|i| format!("{i}.M1P1Q{i}.host"))
        .collect();
    let mut names: Vec<(String, bool, bool)> = Vec::new(); // (key, in cur, seen)
    for (i, key) in keys.iter().enumerate() {
        let in_cur = i % 2 == 0;
        let path = if in_cur {
            format!("cur/{key}:2,")
        } else {
            format!("new/{key}")
        };
        touch(&folder.path().join(path));
        names.push((key.clone(), in_cur, false));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let renamer = {
        let stop = stop.clone();
        let root = folder.path().to_path_buf();
        std::thread::spawn(move || {
            let mut renames = 0u64;
            let mut state = 0x2545_f491_4f6c_dd1du64;
            while !stop.load(Ordering::Relaxed) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let (key, in_cur, seen) = &mut names[(state % MESSAGES as u64) as usize];
                let from = if *in_cur {
                    root.join(format!("cur/{key}:2,{}", if *seen { "S" } else { "" }))
                } else {
                    root.join(format!("new/{key}"))
                };
                let flag = if *in_cur { !*seen } else { *seen };
                let to = root.join(format!("cur/{key}:2,{}", if flag { "S" } else { "" }));
                fs::rename(&from, &to).expect("rename");
                *in_cur = true;
                *seen = flag;
                renames += 1;
            }
            renames
        })
    };
    let options = ScanOptions {
        wait_to_settle: false,
        ..ScanOptions::default()
    };
    let started = Instant::now();
    let mut unstable = 0;
    for _ in 0..SCANS {
        let listing = folder.scan_with(options).expect("scan");
        let listed: Vec<&str> = listing.messages().iter().map(|e| e.key()).collect();
        let unique: BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(unique.len(), listed.len(), "a key listed twice");
        for dup in listing.duplicates() {
            assert!(keys.contains(dup.key()), "invented duplicate {}", dup.key());
        }
        let expected: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(unique, expected, "lost or invented a message");
        unstable += usize::from(!listing.is_stable());
    }
    stop.store(true, Ordering::Relaxed);
    let renames = renamer.join().expect("renamer");
    eprintln!(
        "{SCANS} scans of {MESSAGES} messages under {renames} renames in {:?}, {unstable} unstable",
        started.elapsed()
    );
    assert!(renames > 0);
    assert!(started.elapsed() < Duration::from_secs(60));
}
