//! Hostile folder names, symbolic links, and the tree listing.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use ferry_maildir::{Error, FolderName, Layout, Problem, Tree};

use crate::common::names;

/// Server names (delimiter `/` unless the tuple says otherwise).
const HOSTILE: &[(&str, char)] = &[
    ("..", '/'),
    (".", '/'),
    ("", '/'),
    ("/etc/passwd", '/'),
    ("/etc/passwd", '.'),
    ("a/../../etc", '/'),
    ("../outside", '/'),
    ("a/./b", '/'),
    ("a//b", '/'),
    ("trailing/", '/'),
    ("nul\0byte", '/'),
    ("new\nline", '/'),
    ("tab\there", '/'),
    ("del\u{7f}", '/'),
    ("c1\u{85}control", '/'),
    ("esc\u{1b}[31m", '/'),
    ("cur", '/'),
    ("new", '/'),
    ("tmp", '/'),
    ("A/cur", '/'),
    ("INBOX/new", '/'),
    ("a.cur", '.'),
    ("..", '.'),
    ("a..b", '.'),
    // Mostly accepted, escaped reversibly:
    (".hidden", '/'),
    ("..hidden", '/'),
    ("...", '.'),
    ("%2E%2E", '/'),
    ("%2F", '/'),
    ("50%", '/'),
    ("a/b", '.'),
    ("../x", '.'),
    ("v1.2", '/'),
    ("back\\slash", '/'),
    ("with space", '/'),
    ("-dash", '/'),
    ("~tilde", '/'),
    ("$HOME", '/'),
    ("*?[]", '/'),
    ("日本語/メール", '/'),
    ("emoji 📧", '/'),
    ("Cur", '/'),
    ("INBOX", '/'),
    ("INBOX/Sub", '/'),
    ("Archive/2024/Q1", '/'),
];

fn long_names() -> Vec<String> {
    vec![
        "x".repeat(255),
        "x".repeat(256),
        "ü".repeat(128),
        "%".repeat(86),
    ]
}

/// Creates every acceptable name; checks that everything created is under
/// the root, maps back to its name, and is listed.
fn create_all(layout: Layout) {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    let tree = Tree::create(dir.path().join("root"), layout).expect("tree");
    let mut accepted = BTreeSet::new();
    let mut refused = Vec::new();
    let long = long_names();
    let all = HOSTILE
        .iter()
        .map(|(n, d)| (n.to_string(), *d))
        .chain(long.into_iter().map(|n| (n, '/')));
    for (server, delim) in all {
        let name = FolderName::from_server(&server, Some(delim), "");
        match name
            .map_err(Error::from)
            .and_then(|n| tree.create_folder(&n).map(|f| (n, f)))
        {
            Ok((name, folder)) => {
                let real = fs::canonicalize(folder.path()).expect("exists");
                assert!(real.starts_with(tree.root()), "{server:?} -> {real:?}");
                assert_eq!(
                    layout.folder_name(folder.rel_path()),
                    Ok(name.clone()),
                    "{server:?}"
                );
                accepted.insert(folder.rel_path().to_path_buf());
            }
            Err(Error::Name(e)) => refused.push((server, e.problem)),
            Err(e) => panic!("{server:?}: {e}"),
        }
    }
    assert_eq!(names(dir.path()), ["outside", "root"], "{layout:?}");
    assert!(names(&outside).is_empty());
    let listed: BTreeSet<PathBuf> = tree
        .list()
        .expect("list")
        .folders
        .iter()
        .map(|(_, f)| f.rel_path().to_path_buf())
        .collect();
    assert_eq!(listed, accepted, "{layout:?}");
    let refused_names: Vec<&str> = refused.iter().map(|(n, _)| n.as_str()).collect();
    for must in [
        "..",
        ".",
        "",
        "/etc/passwd",
        "a/../../etc",
        "nul\0byte",
        "new\nline",
        "del\u{7f}",
    ] {
        assert!(
            refused_names.contains(&must),
            "{layout:?} accepted {must:?}"
        );
    }
    if layout == Layout::Fs {
        for must in ["cur", "new", "tmp", "A/cur", "INBOX/new"] {
            assert!(
                refused_names.contains(&must),
                "{layout:?} accepted {must:?}"
            );
        }
    }
    assert!(
        refused
            .iter()
            .any(|(_, p)| matches!(p, Problem::TooLong(_)))
    );
    let fits = refused_names.contains(&"x".repeat(255).as_str());
    assert_eq!(
        fits,
        layout == Layout::MaildirPlusPlus,
        "255 bytes fit in fs, not after maildir++'s dot"
    );
}

#[test]
fn hostile_names_are_refused_or_escaped_fs() {
    create_all(Layout::Fs);
}

#[test]
fn hostile_names_are_refused_or_escaped_maildir_plus_plus() {
    create_all(Layout::MaildirPlusPlus);
}

#[test]
fn two_server_names_for_one_directory_are_refused() {
    let names = ["INBOX", "Inbox", "Work"];
    let parsed: Vec<FolderName> = names
        .iter()
        .map(|n| FolderName::from_server(n, Some('/'), "").expect("valid"))
        .collect();
    for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
        let err = layout
            .check_unique(names.iter().copied().zip(parsed.iter()))
            .expect_err("INBOX twice");
        assert!(err.to_string().contains("Inbox"), "{err}");
    }
}

fn make_folder(path: &Path) {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(path.join(sub)).expect("mkdir");
    }
}

#[test]
fn links_out_of_the_root_are_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    make_folder(&outside);
    let tree = Tree::create(dir.path().join("root"), Layout::Fs).expect("tree");
    let root = tree.root().to_path_buf();
    make_folder(&root.join("Real"));
    make_folder(&root.join("INBOX"));
    symlink(&outside, root.join("Evil")).expect("symlink");
    symlink(root.join("Real"), root.join("Alias")).expect("symlink");
    make_folder(&root.join("Half"));
    fs::remove_dir(root.join("Half/tmp")).expect("rmdir");
    symlink(outside.join("tmp"), root.join("Half/tmp")).expect("symlink");

    let listing = tree.list().expect("list");
    let listed: Vec<String> = listing.folders.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(listed, ["INBOX", "Real"]);
    let skipped: Vec<&Path> = listing.skipped.iter().map(|(p, _)| p.as_path()).collect();
    assert_eq!(
        skipped,
        [Path::new("Evil"), Path::new("Half"), Path::new("Alias")]
    );

    let evil = FolderName::new(["Evil"]).expect("valid");
    assert!(matches!(tree.folder(&evil), Err(Error::OutsideRoot { .. })));
    let deeper = FolderName::new(["Evil", "Sub"]).expect("valid");
    assert!(matches!(
        tree.create_folder(&deeper),
        Err(Error::OutsideRoot { .. })
    ));
    let half = FolderName::new(["Half"]).expect("valid");
    assert!(matches!(tree.folder(&half), Err(Error::OutsideRoot { .. })));
    assert_eq!(names(&outside), ["cur", "new", "tmp"]);
    assert!(names(&outside.join("cur")).is_empty());
}

#[test]
fn maildir_plus_plus_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(dir.path(), Layout::MaildirPlusPlus).expect("tree");
    for name in [&["INBOX"][..], &["Sent"], &["Archive", "2024"], &["v1.2"]] {
        tree.create_folder(&FolderName::new(name.iter().copied()).expect("valid"))
            .expect("create");
    }
    assert!(tree.root().join(".Archive.2024/maildirfolder").exists());
    assert!(tree.root().join(".v1%2E2/cur").is_dir());
    fs::create_dir(tree.root().join("not-a-folder")).expect("mkdir");
    let listing = tree.list().expect("list");
    let listed: Vec<String> = listing.folders.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(listed, ["INBOX", "Archive/2024", "Sent", "v1.2"]);
    let inbox = tree
        .folder(&FolderName::inbox())
        .expect("INBOX is the root");
    assert_eq!(inbox.path(), tree.root());
}

#[test]
fn fs_tree_reports_what_it_cannot_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(dir.path(), Layout::Fs).expect("tree");
    make_folder(&tree.root().join("50%off"));
    make_folder(&tree.root().join(".Sent"));
    make_folder(&tree.root().join("Plain/Nested"));
    let listing = tree.list().expect("list");
    let listed: Vec<String> = listing.folders.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(listed, ["Plain/Nested"]);
    let skipped: BTreeSet<PathBuf> = listing.skipped.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        skipped,
        [PathBuf::from("50%off"), PathBuf::from(".Sent")].into()
    );
}
