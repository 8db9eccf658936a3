//! Entry points for the fuzzers in `fuzz/` and for the tests that replay
//! their corpus: each takes arbitrary bytes and must never panic.

use crate::layout::{FolderName, Layout};
use crate::name::MaildirName;
use std::path::{Component, Path};

/// Parses `data` as a Maildir file name, and as a folder name a server
/// sent: a file name that parses gives itself back; a folder name that is
/// accepted maps to a path that stays under the Maildir root (plain
/// components only) and maps back to the same folder, in both layouts.
pub fn names(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = MaildirName::parse(text) {
        let again = MaildirName::parse(&name.file_name()).map(|n| n.key().to_string());
        assert_eq!(again.ok().as_deref(), Some(name.key()));
    }
    for delimiter in [Some('/'), Some('.'), None] {
        let Ok(folder) = FolderName::from_server(text, delimiter, "") else {
            continue;
        };
        for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
            if let Ok(path) = layout.local_path(&folder) {
                assert!(stays_under_root(&path), "{text:?} -> {path:?}");
                assert_eq!(layout.folder_name(&path).ok().as_ref(), Some(&folder));
            }
        }
    }
}

fn stays_under_root(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}
