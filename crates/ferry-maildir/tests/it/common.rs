//! Helpers shared by the tests.

use std::fs;
use std::path::Path;

/// A CRLF message of about `size` bytes, distinct per `seed`.
pub fn message(seed: usize, size: usize) -> Vec<u8> {
    let mut out = format!("Message-ID: <{seed}@test>\r\nSubject: test {seed}\r\n\r\n").into_bytes();
    let mut line = 0;
    while out.len() < size {
        out.extend_from_slice(
            format!("line {line} of message {seed}, with a lone \r in it\r\n").as_bytes(),
        );
        line += 1;
    }
    out
}

/// The names in `dir` (which must exist), sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file of a folder's `new/` and `cur/`, as (subdir, name).
pub fn message_files(folder: &Path) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for sub in ["new", "cur"] {
        for name in names(&folder.join(sub)) {
            all.push((sub.to_string(), name));
        }
    }
    all
}

/// Waits past the settle margin, so that the next scan is stable at once.
pub fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(120));
}
