//! Making, renaming and removing folders in both layouts.

use std::fs;

use ferry_maildir::{Error, FolderName, Layout, Tree};

use crate::common::names;

fn name(parts: &[&str]) -> FolderName {
    FolderName::new(parts.iter().copied()).expect("valid")
}

fn listed(tree: &Tree) -> Vec<String> {
    let listing = tree.list().expect("list");
    listing.folders.iter().map(|(n, _)| n.to_string()).collect()
}

#[test]
fn rename_moves_fs_subfolders_and_one_maildir_plus_plus_folder() {
    for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = Tree::create(dir.path(), layout).expect("tree");
        for parts in [&["INBOX"][..], &["A"], &["A", "B"], &["Taken"]] {
            tree.create_folder(&name(parts)).expect("create");
        }
        fs::write(
            tree.folder(&name(&["A"]))
                .expect("A")
                .path()
                .join("cur/k:2,S"),
            b"m\n",
        )
        .expect("write");
        let moved = tree
            .rename_folder(&name(&["A"]), &name(&["X", "Y"]))
            .expect("rename");
        assert!(moved.path().join("cur/k:2,S").is_file());
        let err = tree
            .rename_folder(&name(&["X", "Y"]), &name(&["Taken"]))
            .expect_err("never replaces");
        assert!(matches!(err, Error::Exists { .. }), "{err}");
        assert!(matches!(
            tree.rename_folder(&name(&["A"]), &name(&["Z"])),
            Err(Error::NotAFolder { .. })
        ));
        let expected: &[&str] = match layout {
            Layout::Fs => &["INBOX", "Taken", "X/Y", "X/Y/B"],
            Layout::MaildirPlusPlus => &["INBOX", "A/B", "Taken", "X/Y"],
        };
        assert_eq!(listed(&tree), expected, "{layout:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(dir.path(), Layout::MaildirPlusPlus).expect("tree");
    tree.create_folder(&FolderName::inbox()).expect("create");
    let err = tree
        .rename_folder(&FolderName::inbox(), &name(&["Old"]))
        .expect_err("the root");
    assert!(matches!(err, Error::Root { .. }), "{err}");
}

#[test]
fn remove_takes_only_empty_folders_and_only_their_directories() {
    for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = Tree::create(dir.path(), layout).expect("tree");
        let (full, empty, parent) = (name(&["Full"]), name(&["Empty"]), name(&["P"]));
        for n in [&full, &empty, &parent, &name(&["P", "Child"])] {
            tree.create_folder(n).expect("create");
        }
        let full_dir = tree.folder(&full).expect("Full").path().to_path_buf();
        fs::write(full_dir.join("new/k"), b"m\n").expect("write");
        let err = tree.remove_folder(&full).expect_err("holds a message");
        assert!(matches!(err, Error::NotEmpty { .. }), "{err}");
        assert!(err.to_string().contains("\"k\""), "{err}");
        assert_eq!(
            names(&full_dir),
            layout_names(layout, &["cur", "new", "tmp"])
        );
        fs::remove_file(full_dir.join("new/k")).expect("rm");
        fs::write(full_dir.join("tmp/half"), b"m").expect("write");
        assert!(matches!(
            tree.remove_folder(&full),
            Err(Error::NotEmpty { .. })
        ));

        tree.remove_folder(&empty).expect("remove");
        tree.remove_folder(&empty).expect("gone already is fine");
        tree.remove_folder(&parent).expect("remove");
        assert_eq!(listed(&tree), ["Full", "P/Child"], "{layout:?}");
        if layout == Layout::Fs {
            assert_eq!(names(&dir.path().join("P")), ["Child"], "the child stays");
        }
        assert!(!dir.path().join(".Empty").exists() && !dir.path().join("Empty").exists());
    }
}

/// A folder's own entries: maildir++ subfolders also have `maildirfolder`.
fn layout_names(layout: Layout, base: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    if layout == Layout::MaildirPlusPlus {
        all.push("maildirfolder".into());
    }
    all.sort();
    all
}

#[test]
fn a_removal_cut_short_is_completed_and_the_root_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(dir.path(), Layout::Fs).expect("tree");
    let half = name(&["Half"]);
    let folder = tree.create_folder(&half).expect("create");
    fs::remove_dir(folder.path().join("tmp")).expect("rmdir");
    fs::remove_dir(folder.path().join("new")).expect("rmdir");
    tree.remove_folder(&half).expect("completed");
    assert!(!folder.path().exists());

    let plus = tempfile::tempdir().expect("tempdir");
    let tree = Tree::create(plus.path(), Layout::MaildirPlusPlus).expect("tree");
    tree.create_folder(&FolderName::inbox()).expect("create");
    let err = tree.remove_folder(&FolderName::inbox()).expect_err("root");
    assert!(matches!(err, Error::Root { .. }), "{err}");
    assert!(tree.root().join("cur").is_dir());
}
