//! The manual page and the shell completions in the repository are what
//! `ferry generate` makes from the command definitions: they never drift
//! from `--help`. Regenerate with:
//!
//! ```sh
//! ferry generate man > man/ferry.1
//! for sh in bash zsh fish; do ferry generate $sh > packaging/completions/ferry.$sh; done
//! ```

use std::process::Command;

fn generate(what: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["generate", what])
        .output()
        .expect("ferry runs");
    assert!(output.status.success(), "ferry generate {what} failed");
    String::from_utf8(output.stdout).expect("utf-8")
}

fn committed(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .expect(path)
}

#[test]
fn the_manual_page_is_current() {
    let page = generate("man");
    assert_eq!(
        page,
        committed("man/ferry.1"),
        "regenerate man/ferry.1 (see this file's docs)"
    );
    for section in [
        "FERRY SYNC",
        "FERRY PLAN",
        "FERRY STATUS",
        "FERRY DOCTOR",
        "EXIT STATUS",
        "EXAMPLES",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
}

#[test]
fn the_completions_are_current() {
    for shell in ["bash", "zsh", "fish"] {
        let path = format!("packaging/completions/ferry.{shell}");
        assert_eq!(generate(shell), committed(&path), "regenerate {path}");
    }
}

#[test]
fn an_unknown_target_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["generate", "nonsense"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
}
