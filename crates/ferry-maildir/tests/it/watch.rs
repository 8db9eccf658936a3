//! The watcher: dirty hints under load, overflow, folders created later.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_maildir::{FolderName, Hint, Layout, NewMessage, Tree, TreeWatcher};

/// Collects hints until `done` returns true or `limit` passes.
fn collect(
    watcher: &TreeWatcher,
    limit: Duration,
    mut done: impl FnMut(&BTreeSet<PathBuf>, bool) -> bool,
) -> (BTreeSet<PathBuf>, bool) {
    let start = Instant::now();
    let mut dirty = BTreeSet::new();
    let mut everything = false;
    while start.elapsed() < limit && !done(&dirty, everything) {
        match watcher.wait(Duration::from_millis(200)) {
            Hint::Dirty(set) => dirty.extend(set),
            Hint::Everything => everything = true,
            Hint::Nothing => {}
        }
    }
    (dirty, everything)
}

#[test]
fn ten_thousand_renames_mark_every_folder_dirty() {
    const FOLDERS: usize = 5;
    const RENAMES: usize = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(dir.path(), Layout::Fs).expect("tree");
    let mut folders = Vec::new();
    for i in 0..FOLDERS {
        let name = FolderName::new([format!("F{i}")]).expect("valid");
        let folder = tree.create_folder(&name).expect("create");
        for m in 0..20 {
            fs::write(folder.path().join(format!("cur/m{m}:2,")), b"x\n").expect("write");
        }
        folders.push(folder);
    }
    let watcher = TreeWatcher::new(&tree).expect("watch");
    let renamer = std::thread::spawn(move || {
        let mut seen = [[false; 20]; FOLDERS];
        for r in 0..RENAMES {
            let (f, m) = (r % FOLDERS, (r / FOLDERS) % 20);
            let cur = folders[f].path().join("cur");
            let flag = |s: bool| if s { "S" } else { "" };
            let from = cur.join(format!("m{m}:2,{}", flag(seen[f][m])));
            seen[f][m] = !seen[f][m];
            let to = cur.join(format!("m{m}:2,{}", flag(seen[f][m])));
            fs::rename(from, to).expect("rename");
        }
    });
    let want: BTreeSet<PathBuf> = (0..FOLDERS)
        .map(|i| PathBuf::from(format!("F{i}")))
        .collect();
    let (dirty, everything) = collect(&watcher, Duration::from_secs(20), |d, e| {
        e || want.is_subset(d)
    });
    renamer.join().expect("renamer");
    assert!(everything || want.is_subset(&dirty), "dirty {dirty:?}");
    eprintln!("10,000 renames: dirty {dirty:?}, overflowed: {everything}");
    // The rest of the burst drains; then quiet.
    let drain = Instant::now();
    while watcher.wait(Duration::from_millis(300)) != Hint::Nothing {
        assert!(
            drain.elapsed() < Duration::from_secs(20),
            "events never stop"
        );
    }

    watcher.inject_overflow();
    assert_eq!(watcher.wait(Duration::from_secs(1)), Hint::Everything);
}

#[test]
fn folders_created_later_are_watched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(dir.path(), Layout::Fs).expect("tree");
    let watcher = TreeWatcher::new(&tree)
        .expect("watch")
        .with_debounce(Duration::from_millis(50));
    assert_eq!(watcher.wait(Duration::from_millis(50)), Hint::Nothing);

    let name = FolderName::new(["Later", "Deeper"]).expect("valid");
    let folder = tree.create_folder(&name).expect("create");
    let want = PathBuf::from("Later/Deeper");
    let (dirty, _) = collect(&watcher, Duration::from_secs(5), |d, _| d.contains(&want));
    assert!(dirty.contains(&want), "{dirty:?}");
    while watcher.wait(Duration::from_millis(200)) != Hint::Nothing {}

    // Its new/ is watched now: a delivery is seen.
    let msg = NewMessage {
        into_new: true,
        ..NewMessage::new()
    };
    folder
        .deliver(&msg, &b"hi\r\n"[..])
        .expect("deliver")
        .sync()
        .expect("sync");
    let (dirty, _) = collect(&watcher, Duration::from_secs(5), |d, _| d.contains(&want));
    assert_eq!(dirty, [want].into());

    // Reading is not a change; tmp/ is not watched.
    let listing = folder.scan().expect("scan");
    let mut file = folder.open_message(&listing.messages()[0]).expect("open");
    std::io::Read::read_to_end(&mut file, &mut Vec::new()).expect("read");
    fs::write(folder.path().join("tmp/scratch"), b"x").expect("write");
    assert_eq!(watcher.wait(Duration::from_millis(300)), Hint::Nothing);
}

#[test]
fn maildir_plus_plus_inbox_is_the_empty_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(dir.path(), Layout::MaildirPlusPlus).expect("tree");
    let inbox = tree.create_folder(&FolderName::inbox()).expect("INBOX");
    let watcher = TreeWatcher::new(&tree)
        .expect("watch")
        .with_debounce(Duration::from_millis(50));
    inbox
        .deliver(&NewMessage::new(), &b"hi\r\n"[..])
        .expect("deliver")
        .sync()
        .expect("sync");
    let (dirty, _) = collect(&watcher, Duration::from_secs(5), |d, _| !d.is_empty());
    assert_eq!(dirty, [PathBuf::new()].into());
    tree.create_folder(&FolderName::new(["Sent"]).expect("valid"))
        .expect("create");
    let (dirty, _) = collect(&watcher, Duration::from_secs(5), |d, _| {
        d.contains(&PathBuf::from(".Sent"))
    });
    assert!(dirty.contains(&PathBuf::from(".Sent")), "{dirty:?}");
}
