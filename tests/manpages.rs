//! The manual pages: man/ferry.toml.5 documents every key the config parser
//! accepts and no other, its TOML examples are configs ferry accepts,
//! man/ferry.1 points to it, and both pages render without warnings where
//! groff or mandoc is installed.
//!
//! The keys come from src/config/keys.rs, which a unit test in
//! src/config/tests.rs holds equal to the fields the parser reads.

#[path = "../src/config/keys.rs"]
mod keys;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_path(path)).expect(path)
}

/// The lines of section `name`: from its `.SH` to the next `.SH`.
fn section<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let title = |line: &str| {
        line.strip_prefix(".SH ")
            .map(|title| title.trim().trim_matches('"').to_string())
    };
    let mut lines = page
        .lines()
        .skip_while(|line| title(line).as_deref() != Some(name));
    assert!(lines.next().is_some(), "no section {name:?}");
    lines.take_while(|line| title(line).is_none()).collect()
}

/// One `.TP` entry: its tag line and the lines up to the next entry,
/// subsection or section.
struct Entry<'a> {
    tag: &'a str,
    body: Vec<&'a str>,
}

impl Entry<'_> {
    /// The first bold word of the tag: `\fBhost\fR = ...` is `host`.
    fn name(&self) -> &str {
        self.tag
            .strip_prefix("\\fB")
            .and_then(|rest| rest.split_once("\\fR"))
            .map_or(self.tag, |(name, _)| name)
    }
}

fn entries<'a>(lines: &[&'a str]) -> Vec<Entry<'a>> {
    let mut entries: Vec<Entry<'a>> = Vec::new();
    let mut lines = lines.iter();
    while let Some(line) = lines.next() {
        if *line == ".TP" {
            let tag = lines.next().expect("a tag after .TP");
            entries.push(Entry {
                tag,
                body: Vec::new(),
            });
        } else if line.starts_with(".SS") {
            // Between subsections: text that belongs to no entry.
            entries.push(Entry {
                tag: "",
                body: Vec::new(),
            });
        } else if let Some(entry) = entries.last_mut() {
            entry.body.push(line);
        }
    }
    entries.retain(|entry| !entry.tag.is_empty());
    entries
}

#[test]
fn every_config_key_has_an_entry_and_no_other_key_does() {
    let page = read("man/ferry.toml.5");
    for (name, keys) in [
        ("TOP-LEVEL KEYS", keys::TOP_LEVEL_KEYS),
        ("ACCOUNT KEYS", keys::ACCOUNT_KEYS),
    ] {
        let entries = entries(&section(&page, name));
        let documented: Vec<&str> = entries.iter().map(Entry::name).collect();
        let unique: BTreeSet<&str> = documented.iter().copied().collect();
        assert_eq!(
            unique.len(),
            documented.len(),
            "a key has two entries in {name}: {documented:?}"
        );
        let wanted: BTreeSet<&str> = keys.iter().copied().collect();
        let missing: Vec<&&str> = wanted.difference(&unique).collect();
        let unknown: Vec<&&str> = unique.difference(&wanted).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "man/ferry.toml.5, {name}: keys the parser accepts without an entry: {missing:?}; \
             entries for keys it does not accept: {unknown:?}"
        );
        for entry in &entries {
            assert!(
                entry.tag.contains(" = "),
                "the entry of {} should say its type: `\\fB{0}\\fR = \\fItype\\fR`",
                entry.name()
            );
            let body = entry.body.join("\n");
            assert!(
                body.contains("Default") || body.contains("Required"),
                "the entry of {} says neither its default nor that it is required",
                entry.name()
            );
        }
    }
}

/// The TOML examples of the page (`.nf` blocks with an `[accounts.`
/// table), as a user would copy them.
fn toml_examples(page: &str) -> Vec<String> {
    let mut examples = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for line in page.lines() {
        match line {
            ".nf" => block = Some(Vec::new()),
            ".fi" => {
                let lines = block.take().expect(".fi after .nf");
                if lines.iter().any(|line| line.starts_with("[accounts.")) {
                    examples.push(lines.join("\n") + "\n");
                }
            }
            _ => {
                if let Some(lines) = &mut block {
                    lines.push(unescape(line));
                }
            }
        }
    }
    assert!(block.is_none(), ".nf without .fi");
    examples
}

/// Roff to plain text, for the escapes the examples use.
fn unescape(line: &str) -> String {
    let text = line
        .replace("\\&", "")
        .replace("\\-", "-")
        .replace("\\(aq", "'")
        .replace("\\(ga", "`")
        .replace("\\(dq", "\"")
        .replace("\\e", "\\");
    assert!(
        !text.contains('\\'),
        "an escape the test does not know in an example: {line}"
    );
    text
}

fn ferry(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_LOG")
        .output()
        .expect("ferry runs")
}

#[test]
fn the_toml_examples_are_configs_ferry_accepts() {
    let examples = toml_examples(&read("man/ferry.toml.5"));
    assert!(examples.len() >= 6, "{} examples", examples.len());
    let home = tempfile::tempdir().expect("tempdir");
    let mut used = BTreeSet::new();
    for example in &examples {
        for line in example.lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                used.insert(key.trim().to_string());
            }
        }
        // No password manager runs in a test.
        let config: String = example
            .lines()
            .map(|line| match line.starts_with("password_command = ") {
                true => "password_command = \"echo example\"\n".to_string(),
                false => format!("{line}\n"),
            })
            .collect();
        let path = home.path().join("config.toml");
        std::fs::write(&path, &config).expect("write config");
        let path = path.to_str().expect("utf-8");
        // doctor exits 2 when the config cannot be used; 0 or 1 otherwise
        // (the example's Maildir, password variable or server are not
        // there).
        let output = ferry(home.path(), &["doctor", "--no-connect", "--config", path]);
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "ferry refuses an example of man/ferry.toml.5 ({}):\n{}\n{config}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let unused: Vec<&&str> = keys::TOP_LEVEL_KEYS
        .iter()
        .chain(keys::ACCOUNT_KEYS)
        .filter(|key| **key != "accounts" && !used.contains(**key))
        .collect();
    assert!(
        unused.is_empty(),
        "keys no example of man/ferry.toml.5 shows: {unused:?}"
    );
}

#[test]
fn the_pages_name_the_version_and_each_other() {
    let page = read("man/ferry.toml.5");
    let th = page
        .lines()
        .find(|line| line.starts_with(".TH "))
        .expect(".TH");
    let version = format!("\"ferry {}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        th.starts_with(".TH ferry.toml 5 ") && th.contains(&version),
        "man/ferry.toml.5 should say {version}: {th}"
    );
    let see_also = section(&page, "SEE ALSO").join("\n");
    assert!(see_also.contains(".BR ferry (1)"), "{see_also}");
    let see_also = section(&read("man/ferry.1"), "SEE ALSO").join("\n");
    assert!(see_also.contains(".BR ferry.toml (5)"), "{see_also}");
}

/// Runs `program args... page`; `None` when the program is not installed.
fn render(program: &str, args: &[&str], page: &str) -> Option<Output> {
    match Command::new(program)
        .args(args)
        .arg(repo_path(page))
        .output()
    {
        Ok(output) => Some(output),
        Err(err) if err.kind() == ErrorKind::NotFound => None,
        Err(err) => panic!("cannot run {program}: {err}"),
    }
}

#[test]
fn the_pages_render_without_warnings() {
    let mut rendered = false;
    for page in ["man/ferry.toml.5", "man/ferry.1"] {
        // groff: every warning on.
        if let Some(output) = render("groff", &["-man", "-Tutf8", "-ww", "-P-cbou"], page) {
            rendered = true;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success() && stderr.is_empty(),
                "groff -man -Tutf8 -ww {page}: {}\n{stderr}",
                output.status
            );
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(
                text.contains("EXAMPLES"),
                "groff rendered {page} as:\n{text}"
            );
        }
        // mandoc: warnings for the hand-written page; clap_mangen's ferry.1
        // carries no date, which mandoc warns about, so errors only there.
        let level = match page.ends_with(".5") {
            true => "warning",
            false => "error",
        };
        if let Some(output) = render("mandoc", &["-T", "lint", "-W", level], page) {
            rendered = true;
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                output.status.success() && said.is_empty(),
                "mandoc -T lint -W {level} {page}: {}\n{said}",
                output.status
            );
        }
    }
    if !rendered {
        println!("note: neither groff nor mandoc is installed; the pages were not rendered");
    }
}
