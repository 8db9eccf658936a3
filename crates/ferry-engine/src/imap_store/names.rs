//! Server folder names to local names and back (design.md, "Local layout").
//!
//! A local name is Unicode with `/` between hierarchy levels and INBOX
//! spelled `INBOX`. On the server, the personal namespace's prefix (`INBOX.`
//! on Courier) comes first, levels are separated by the server's delimiter,
//! and the name is in modified UTF-7. INBOX is case-insensitive there.
//!
//! Only names that map both ways are accepted, so two server folders can
//! never share a local name:
//!
//! - a name outside the personal namespace (another namespace's prefix);
//! - a name that is not valid modified UTF-7 (a sloppy server's raw `&`);
//! - an empty level (`A..B`, a trailing delimiter, the bare prefix);
//! - a level holding `/` when the delimiter is something else (the Maildir
//!   layer will write it `%2F`; until then such a folder is skipped with a
//!   warning);
//! - a name other than INBOX that would read `INBOX` locally (Courier's
//!   `INBOX.INBOX`)
//!
//! are refused by [`FolderNames::local_name`]; the local names that cannot
//! be written on the server (a level holding the server's delimiter, for
//! instance `v1.2` on Courier) are refused by [`FolderNames::checked_wire_name`].

use ferry_imap::mutf7;

/// How one server spells folder names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderNames {
    prefix: String,
    delimiter: Option<char>,
    /// `folder_map`: server names (as LIST shows them, decoded) to local
    /// names, overriding the default mapping.
    map: Vec<(String, String)>,
}

/// Why a name cannot be mapped.
pub type NameProblem = &'static str;

impl FolderNames {
    /// The mapping for a personal namespace `prefix` (wire form, `""` on
    /// Dovecot, `"INBOX."` on Courier) and hierarchy `delimiter` (`None`
    /// on a flat server).
    pub fn new(prefix: impl Into<String>, delimiter: Option<char>) -> FolderNames {
        FolderNames {
            prefix: prefix.into(),
            delimiter,
            map: Vec::new(),
        }
    }

    /// The same mapping with `folder_map` overrides: each server name (as
    /// the server lists it, prefix and delimiter included, e.g.
    /// `[Gmail]/Sent Mail`) gets the given local name, both ways.
    pub fn with_map(mut self, map: impl IntoIterator<Item = (String, String)>) -> FolderNames {
        self.map = map.into_iter().collect();
        self
    }

    /// The personal namespace prefix (wire form).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The server's hierarchy delimiter.
    pub fn delimiter(&self) -> Option<char> {
        self.delimiter
    }

    /// The local name of server folder `wire`, or `None` when it has none
    /// (see the module documentation).
    pub fn local_name(&self, wire: &str) -> Option<String> {
        match self.try_local_name(wire) {
            Ok(local) => Some(local),
            Err(problem) => {
                tracing::debug!("server folder {wire:?} is not synced: {problem}");
                None
            }
        }
    }

    /// [`FolderNames::local_name`], saying why a name has none.
    pub fn try_local_name(&self, wire: &str) -> Result<String, NameProblem> {
        if let Some(local) = mutf7::decode(wire)
            .ok()
            .and_then(|server| self.mapped_local(&server))
        {
            return Ok(local.to_string());
        }
        let local = self.default_local_name(wire)?;
        if self.map.iter().any(|(_, mapped)| mapped == &local) {
            return Err("folder_map gives its local name to another server folder");
        }
        Ok(local)
    }

    fn mapped_local(&self, server: &str) -> Option<&str> {
        self.map
            .iter()
            .find(|(s, _)| s == server)
            .map(|(_, local)| local.as_str())
    }

    fn default_local_name(&self, wire: &str) -> Result<String, NameProblem> {
        if wire.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".into());
        }
        let rest = self
            .strip_prefix(wire)
            .ok_or("it is outside the personal namespace")?;
        let decoded = mutf7::decode(rest).map_err(|_| "it is not valid modified UTF-7")?;
        let levels: Vec<&str> = match self.delimiter {
            Some(d) => decoded.split(d).collect(),
            None => vec![decoded.as_str()],
        };
        if levels.iter().any(|l| l.is_empty()) {
            return Err("it has an empty level");
        }
        if levels[0] != "INBOX" && levels[0].eq_ignore_ascii_case("INBOX") {
            return Err(
                "its first level is INBOX in other letters, which a Maildir cannot keep apart \
                 from INBOX (give it a local name with folder_map)",
            );
        }
        if self.delimiter != Some('/') && levels.iter().any(|l| l.contains('/')) {
            return Err("it contains '/', which is not the server's delimiter");
        }
        let local = levels.join("/");
        if local.eq_ignore_ascii_case("INBOX") {
            return Err("it would read INBOX locally");
        }
        Ok(local)
    }

    /// The server name of local folder `local`. Use
    /// [`FolderNames::checked_wire_name`] for names that did not come from
    /// [`FolderNames::local_name`].
    pub fn wire_name(&self, local: &str) -> String {
        if let Some((server, _)) = self.map.iter().find(|(_, l)| l == local) {
            return mutf7::encode(server);
        }
        if local.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let joined = match self.delimiter {
            Some(d) => local.replace('/', d.encode_utf8(&mut [0; 4])),
            None => local.to_string(),
        };
        format!("{}{}", self.prefix, mutf7::encode(&joined))
    }

    /// [`FolderNames::wire_name`], refusing local names that would not map
    /// back to themselves (a level holding the server's delimiter, an empty
    /// level, a second INBOX).
    pub fn checked_wire_name(&self, local: &str) -> Result<String, NameProblem> {
        let wire = self.wire_name(local);
        let back = self.try_local_name(&wire)?;
        let same = back == local || (back == "INBOX" && local.eq_ignore_ascii_case("INBOX"));
        if same {
            Ok(wire)
        } else {
            Err("it cannot be written on the server (it holds the server's delimiter)")
        }
    }

    /// `wire` without the personal prefix; the `INBOX` part of a prefix
    /// such as `INBOX.` is matched case-insensitively, as INBOX is.
    fn strip_prefix<'w>(&self, wire: &'w str) -> Option<&'w str> {
        let head = wire.get(..self.prefix.len())?;
        let inbox_prefix = self
            .prefix
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("INBOX"));
        let same = if inbox_prefix {
            head.eq_ignore_ascii_case(&self.prefix)
        } else {
            head == self.prefix
        };
        same.then(|| &wire[self.prefix.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dovecot() -> FolderNames {
        FolderNames::new("", Some('/'))
    }

    fn courier() -> FolderNames {
        FolderNames::new("INBOX.", Some('.'))
    }

    #[test]
    fn dovecot_names_map_both_ways() {
        let names = dovecot();
        for (wire, local) in [
            ("INBOX", "INBOX"),
            ("Sent", "Sent"),
            ("A/B/C", "A/B/C"),
            ("INBOX/Sub", "INBOX/Sub"),
            ("Entw&APw-rfe", "Entwürfe"),
            ("a&-b", "a&b"),
            ("Archive.2024", "Archive.2024"),
        ] {
            assert_eq!(names.local_name(wire).as_deref(), Some(local), "{wire}");
            assert_eq!(names.wire_name(local), wire, "{local}");
            assert_eq!(names.checked_wire_name(local).as_deref(), Ok(wire));
        }
        assert_eq!(names.local_name("inbox").as_deref(), Some("INBOX"));
        assert_eq!(names.wire_name("Inbox"), "INBOX");
        for other_letters in ["inbox/x", "Inbox/Sub/y"] {
            assert_eq!(names.local_name(other_letters), None, "{other_letters}");
        }
    }

    #[test]
    fn courier_names_lose_their_prefix() {
        let names = courier();
        for (wire, local) in [
            ("INBOX", "INBOX"),
            ("INBOX.Sent", "Sent"),
            ("INBOX.A.B", "A/B"),
            ("INBOX.Entw&APw-rfe", "Entwürfe"),
            ("INBOX.INBOX.x", "INBOX/x"),
        ] {
            assert_eq!(names.local_name(wire).as_deref(), Some(local), "{wire}");
            assert_eq!(names.wire_name(local), wire, "{local}");
        }
        assert_eq!(names.local_name("inbox.Sent").as_deref(), Some("Sent"));
    }

    #[test]
    fn names_without_a_local_form_are_refused() {
        let names = courier();
        for wire in [
            "INBOX.a/b",
            "Shared.x",
            "INBOX.",
            "INBOX.A..B",
            "INBOX.INBOX",
            "INBOX.Bad&Name",
        ] {
            assert_eq!(names.local_name(wire), None, "{wire}");
        }
        assert_eq!(dovecot().local_name("A//B"), None);
        assert_eq!(dovecot().local_name("A/"), None);
        let flat = FolderNames::new("", None);
        assert_eq!(flat.local_name("a/b"), None);
        assert_eq!(flat.local_name("a.b").as_deref(), Some("a.b"));
    }

    #[test]
    fn local_names_the_server_cannot_hold_are_refused() {
        let names = courier();
        assert!(names.checked_wire_name("v1.2").is_err());
        assert!(names.checked_wire_name("A//B").is_err());
        assert!(names.checked_wire_name("/A").is_err());
        assert_eq!(names.checked_wire_name("inbox").as_deref(), Ok("INBOX"));
        assert!(dovecot().checked_wire_name("A/").is_err());
    }
}

#[cfg(test)]
mod folder_map_tests {
    use super::*;

    #[test]
    fn folder_map_overrides_both_ways_and_guards_collisions() {
        let names = FolderNames::new("", Some('/')).with_map([
            ("[Gmail]/Sent Mail".to_string(), "Sent".to_string()),
            ("Entwürfe".to_string(), "Drafts".to_string()),
        ]);
        assert_eq!(
            names.local_name("[Gmail]/Sent Mail").as_deref(),
            Some("Sent")
        );
        assert_eq!(names.wire_name("Sent"), "[Gmail]/Sent Mail");
        assert_eq!(
            names.local_name(&mutf7::encode("Entwürfe")).as_deref(),
            Some("Drafts")
        );
        assert_eq!(names.wire_name("Drafts"), mutf7::encode("Entwürfe"));
        assert_eq!(
            names.local_name("Sent"),
            None,
            "the server's own Sent would collide"
        );
        assert_eq!(names.local_name("Archive").as_deref(), Some("Archive"));
        assert_eq!(
            names.checked_wire_name("Sent").as_deref(),
            Ok("[Gmail]/Sent Mail")
        );
    }
}
