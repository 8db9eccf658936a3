//! Folder names and where they live on disk (design.md, "Local layout").
//!
//! A [`FolderName`] is a validated list of name components, as the server's
//! hierarchy splits it (`["Archive", "2024"]`), decoded to UTF-8 (the IMAP
//! side decodes modified UTF-7). The first component is INBOX when it is
//! `inbox` in any case, as IMAP says. [`FolderName::from_server`] strips the
//! personal-namespace prefix (`INBOX.` on Courier) and splits on the
//! delimiter; [`FolderName::to_server`] does the reverse.
//!
//! A [`Layout`] maps names to paths relative to the Maildir root, and back:
//!
//! | name            | [`Layout::Fs`] (default)   | [`Layout::MaildirPlusPlus`] |
//! |-----------------|----------------------------|-----------------------------|
//! | `INBOX`         | `INBOX`                    | `` (the root itself)        |
//! | `A`, `B`        | `A/B`                      | `.A.B`                      |
//! | `a/b` (one component) | `a%2Fb`              | `.a%2Fb`                    |
//! | `.hidden`       | `%2Ehidden`                | `.%2Ehidden`                |
//! | `v1.2`          | `v1.2`                     | `.v1%2E2`                   |
//! | `50%`           | `50%25`                    | `.50%25`                    |
//!
//! Inside a component, `/`, a leading `.` (Fs) or any `.` (maildir++), and
//! `%` are written `%2F`, `%2E` and `%25`; nothing else is escaped, so names
//! on disk are readable UTF-8. The mapping is reversible: a local path maps
//! back to a name only if that name maps to exactly that path again (so
//! `a%41` or a user's `50%off` directory is reported, not guessed at).
//!
//! Refused, with a [`NameError`] that names the name and the reason: an
//! empty name or component, `.` and `..`, names that look like absolute
//! paths, control characters (U+0000 to U+001F, U+007F to U+009F), in the
//! Fs layout components equal to `cur`, `new` or `tmp` (they would be the
//! Maildir subdirectories of the parent folder), and any directory name over
//! 255 bytes after escaping. [`Layout::check_unique`] refuses a set of names
//! in which two map to one directory (`INBOX` and `Inbox`, say).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The longest directory name most file systems allow.
const MAX_NAME_BYTES: usize = 255;

/// How folders are laid out under the Maildir root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// `<root>/INBOX`, `<root>/A/B`. A directory is a folder iff it has `cur/`.
    #[default]
    Fs,
    /// Maildir++ as Dovecot and Courier store it: INBOX is the root, `A/B`
    /// is `<root>/.A.B`.
    MaildirPlusPlus,
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// No component at all.
    #[error("it is empty")]
    Empty,
    /// An empty component (`A//B`, a trailing delimiter).
    #[error("it has an empty component")]
    EmptyComponent,
    /// A component `.` or `..`.
    #[error("a component is '.' or '..'")]
    DotComponent,
    /// A name starting with `/`.
    #[error("it looks like an absolute path")]
    Absolute,
    /// A control character.
    #[error("it contains a control character")]
    Control,
    /// `cur`, `new` or `tmp` as a component (Fs layout).
    #[error("a component is '{0}', which is a Maildir subdirectory")]
    Reserved(&'static str),
    /// Longer than a directory name may be.
    #[error("a directory name would be {0} bytes, over the limit of 255")]
    TooLong(usize),
    /// Maps to the same directory as another name.
    #[error("it maps to the same directory {dir:?} as {other:?}")]
    Collides {
        /// The other name.
        other: String,
        /// The shared directory, relative to the root.
        dir: PathBuf,
    },
    /// A local path that is not what any name maps to.
    #[error("it is not a folder name ferry writes ({0})")]
    NotCanonical(&'static str),
    /// A local path that is not UTF-8.
    #[error("it is not UTF-8")]
    NotUtf8,
    /// A component contains the server's hierarchy delimiter.
    #[error("a component contains the server's hierarchy delimiter {0:?}")]
    Delimiter(char),
    /// A hierarchy on a server without one.
    #[error("it has several components but the server has no hierarchy delimiter")]
    Flat,
}

/// A folder name refused, with the name and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("folder name {name:?} refused: {problem}")]
pub struct NameError {
    /// The name as given (components joined with `/`, or the path).
    pub name: String,
    /// Why.
    pub problem: Problem,
}

impl NameError {
    fn new(name: impl Into<String>, problem: Problem) -> Self {
        NameError {
            name: name.into(),
            problem,
        }
    }
}

/// A validated folder name: its components, INBOX spelled `INBOX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FolderName {
    parts: Vec<String>,
}

impl FolderName {
    /// INBOX.
    pub fn inbox() -> Self {
        FolderName {
            parts: vec!["INBOX".to_string()],
        }
    }

    /// Validates `parts` (see the module documentation).
    pub fn new<I, S>(parts: I) -> Result<Self, NameError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut parts: Vec<String> = parts.into_iter().map(Into::into).collect();
        let shown = parts.join("/");
        let problem = |p| NameError::new(shown.clone(), p);
        if parts.is_empty() {
            return Err(problem(Problem::Empty));
        }
        for part in &parts {
            check_component(part).map_err(problem)?;
        }
        if parts[0].eq_ignore_ascii_case("INBOX") {
            parts[0] = "INBOX".to_string();
        }
        Ok(FolderName { parts })
    }

    /// Parses a server name: strips `prefix` (the personal namespace, such
    /// as `INBOX.`, when the name is longer than it) and splits on
    /// `delimiter` (`None`: a flat namespace).
    pub fn from_server(
        name: &str,
        delimiter: Option<char>,
        prefix: &str,
    ) -> Result<Self, NameError> {
        if name.starts_with('/') {
            return Err(NameError::new(name, Problem::Absolute));
        }
        let stripped = match name.strip_prefix(prefix) {
            Some(rest) if !prefix.is_empty() && !rest.is_empty() => rest,
            _ => name,
        };
        match delimiter {
            Some(d) => FolderName::new(stripped.split(d)),
            None => FolderName::new([stripped]),
        }
    }

    /// The server name: `prefix` and the components joined by `delimiter`.
    /// INBOX is `INBOX`, without the prefix.
    pub fn to_server(&self, delimiter: Option<char>, prefix: &str) -> Result<String, NameError> {
        if self.is_inbox() {
            return Ok("INBOX".to_string());
        }
        let joined = match delimiter {
            Some(d) => {
                if self.parts.iter().any(|p| p.contains(d)) {
                    return Err(NameError::new(self.to_string(), Problem::Delimiter(d)));
                }
                self.parts.join(&d.to_string())
            }
            None if self.parts.len() == 1 => self.parts[0].clone(),
            None => return Err(NameError::new(self.to_string(), Problem::Flat)),
        };
        Ok(format!("{prefix}{joined}"))
    }

    /// The components.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// Whether this is INBOX itself.
    pub fn is_inbox(&self) -> bool {
        self.parts.len() == 1 && self.parts[0] == "INBOX"
    }
}

impl fmt::Display for FolderName {
    /// The components joined with `/` (for messages; not reversible).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("/"))
    }
}

fn check_component(part: &str) -> Result<(), Problem> {
    if part.is_empty() {
        Err(Problem::EmptyComponent)
    } else if part == "." || part == ".." {
        Err(Problem::DotComponent)
    } else if part.chars().any(char::is_control) {
        Err(Problem::Control)
    } else {
        Ok(())
    }
}

impl Layout {
    /// The directory of `name`, relative to the root (empty for INBOX in
    /// maildir++).
    pub fn local_path(self, name: &FolderName) -> Result<PathBuf, NameError> {
        let refuse = |p| NameError::new(name.to_string(), p);
        match self {
            Layout::Fs => {
                let mut path = PathBuf::new();
                for part in name.parts() {
                    if let Some(reserved) = ["cur", "new", "tmp"].into_iter().find(|r| r == part) {
                        return Err(refuse(Problem::Reserved(reserved)));
                    }
                    path.push(check_len(escape(part, false)).map_err(refuse)?);
                }
                Ok(path)
            }
            Layout::MaildirPlusPlus if name.is_inbox() => Ok(PathBuf::new()),
            Layout::MaildirPlusPlus => {
                let mut dir = String::new();
                for part in name.parts() {
                    dir.push('.');
                    dir.push_str(&escape(part, true));
                }
                Ok(PathBuf::from(check_len(dir).map_err(refuse)?))
            }
        }
    }

    /// The folder name of a directory relative to the root; refused unless
    /// [`Layout::local_path`] of that name gives exactly `rel` back.
    pub fn folder_name(self, rel: &Path) -> Result<FolderName, NameError> {
        let shown = rel.display().to_string();
        let refuse = |p| NameError::new(shown.clone(), p);
        let mut parts = Vec::new();
        for component in rel.components() {
            match component {
                Component::Normal(c) => {
                    parts.push(c.to_str().ok_or_else(|| refuse(Problem::NotUtf8))?)
                }
                _ => return Err(refuse(Problem::NotCanonical("not a plain relative path"))),
            }
        }
        let decoded = match self {
            Layout::Fs => parts
                .iter()
                .map(|p| unescape(p))
                .collect::<Result<Vec<_>, _>>(),
            Layout::MaildirPlusPlus => match parts.as_slice() {
                [] => Ok(vec!["INBOX".to_string()]),
                [dir] => match dir.strip_prefix('.') {
                    Some(rest) => rest.split('.').map(unescape).collect(),
                    None => Err(Problem::NotCanonical("a maildir++ folder starts with '.'")),
                },
                _ => Err(Problem::NotCanonical("maildir++ folders are not nested")),
            },
        }
        .map_err(refuse)?;
        let name = FolderName::new(decoded).map_err(|e| refuse(e.problem))?;
        if self.local_path(&name)? != rel {
            return Err(refuse(Problem::NotCanonical("spelled differently")));
        }
        Ok(name)
    }

    /// Refuses a set of names in which two different server names (the
    /// labels) map to one directory, such as `INBOX` and `Inbox`, which
    /// are both INBOX. The same label given twice is no collision.
    pub fn check_unique<'a, I>(self, names: I) -> Result<(), NameError>
    where
        I: IntoIterator<Item = (&'a str, &'a FolderName)>,
    {
        let mut dirs: BTreeMap<PathBuf, &str> = BTreeMap::new();
        for (label, name) in names {
            let dir = self.local_path(name)?;
            match dirs.get(&dir) {
                Some(other) if *other != label => {
                    let problem = Problem::Collides {
                        other: other.to_string(),
                        dir,
                    };
                    return Err(NameError::new(label, problem));
                }
                _ => {
                    dirs.insert(dir, label);
                }
            }
        }
        Ok(())
    }
}

fn check_len(dir: String) -> Result<String, Problem> {
    if dir.len() > MAX_NAME_BYTES {
        Err(Problem::TooLong(dir.len()))
    } else {
        Ok(dir)
    }
}

/// Escapes one component: `%`, `/`, and a leading `.` (every `.` when
/// `all_dots`, for maildir++).
fn escape(part: &str, all_dots: bool) -> String {
    let mut out = String::with_capacity(part.len());
    for (i, c) in part.chars().enumerate() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '.' if all_dots || i == 0 => out.push_str("%2E"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`]; any other `%` sequence is not ours.
fn unescape(part: &str) -> Result<String, Problem> {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        out.push(match code {
            Some("25") => '%',
            Some("2F") => '/',
            Some("2E") => '.',
            _ => return Err(Problem::NotCanonical("'%' not followed by 25, 2E or 2F")),
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(parts: &[&str]) -> FolderName {
        FolderName::new(parts.iter().copied()).expect("valid")
    }

    #[test]
    fn the_table_in_the_docs() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&["INBOX"], "INBOX", ""),
            (&["A", "B"], "A/B", ".A.B"),
            (&["a/b"], "a%2Fb", ".a%2Fb"),
            (&[".hidden"], "%2Ehidden", ".%2Ehidden"),
            (&["v1.2"], "v1.2", ".v1%2E2"),
            (&["50%"], "50%25", ".50%25"),
            (&["INBOX", "Sub"], "INBOX/Sub", ".INBOX.Sub"),
        ];
        for (parts, fs, mdpp) in cases {
            let n = name(parts);
            assert_eq!(
                Layout::Fs.local_path(&n),
                Ok(PathBuf::from(fs)),
                "{parts:?}"
            );
            assert_eq!(
                Layout::MaildirPlusPlus.local_path(&n),
                Ok(PathBuf::from(mdpp)),
                "{parts:?}"
            );
            assert_eq!(Layout::Fs.folder_name(Path::new(fs)), Ok(n.clone()));
            assert_eq!(Layout::MaildirPlusPlus.folder_name(Path::new(mdpp)), Ok(n));
        }
    }

    #[test]
    fn inbox_is_case_insensitive_and_collides() {
        assert!(name(&["inbox"]).is_inbox());
        let (upper, mixed) = (name(&["INBOX"]), name(&["Inbox"]));
        let other = name(&["Work"]);
        let listed = [("INBOX", &upper), ("Inbox", &mixed), ("Work", &other)];
        let err = Layout::Fs.check_unique(listed).expect_err("two INBOXes");
        assert_eq!(err.name, "Inbox");
        assert!(matches!(err.problem, Problem::Collides { .. }), "{err}");
        let fine = [("INBOX", &upper), ("Work", &other), ("INBOX", &upper)];
        assert!(Layout::MaildirPlusPlus.check_unique(fine).is_ok());
        assert!(Layout::Fs.folder_name(Path::new("inbox")).is_err());
    }

    #[test]
    fn server_names() {
        let courier = FolderName::from_server("INBOX.Sent.2024", Some('.'), "INBOX.").expect("ok");
        assert_eq!(courier.parts(), ["Sent", "2024"]);
        assert_eq!(
            courier.to_server(Some('.'), "INBOX."),
            Ok("INBOX.Sent.2024".into())
        );
        let inbox = FolderName::from_server("INBOX", Some('.'), "INBOX.").expect("ok");
        assert!(inbox.is_inbox());
        assert_eq!(inbox.to_server(Some('.'), "INBOX."), Ok("INBOX".into()));
        let slash = FolderName::from_server("a/b.c", Some('.'), "").expect("ok");
        assert_eq!(Layout::Fs.local_path(&slash), Ok(PathBuf::from("a%2Fb/c")));
        for bad in ["/etc/passwd", "a..b", "a.", ".", "a.cur"] {
            let parsed = FolderName::from_server(bad, Some('.'), "");
            let mapped = parsed.and_then(|n| Layout::Fs.local_path(&n));
            assert!(mapped.is_err(), "{bad:?}");
        }
        assert!(name(&["a.b"]).to_server(Some('.'), "").is_err());
        assert!(name(&["a", "b"]).to_server(None, "").is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            "[^\\x00-\\x1f\\x7f-\\x9f]{1,12}",
            "[.%/a-zA-Z]{1,8}",
            Just("cur".to_string()),
            Just("..".to_string()),
        ]
    }

    proptest! {
        #[test]
        fn names_round_trip_or_are_refused(parts in proptest::collection::vec(component(), 1..4)) {
            for layout in [Layout::Fs, Layout::MaildirPlusPlus] {
                let Ok(name) = FolderName::new(parts.clone()) else { continue };
                let Ok(rel) = layout.local_path(&name) else { continue };
                prop_assert!(rel.components().all(|c| matches!(c, Component::Normal(_))), "{:?}", rel);
                prop_assert_eq!(layout.folder_name(&rel), Ok(name));
            }
        }
    }
}
