//! The grammar of Maildir file names: `unique[:2,INFO]`.
//!
//! The unique part is the key that identifies a message across flag renames.
//! The info part keeps every letter verbatim, including ones ferry does not
//! map to a flag (Dovecot's lower-case keyword letters), so a rename for a
//! flag change never drops them. Other tools' suffixes inside the unique part
//! (mbsync's `,U=123`, OfflineIMAP's `,FMD5=...`) are part of the key.

use ferry_core::Flags;

/// A file name that cannot be a Maildir message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a Maildir message name: {reason}")]
pub struct BadName {
    /// The name as found.
    pub name: String,
    /// Why it is not a message name.
    pub reason: &'static str,
}

/// A parsed Maildir file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildirName {
    key: String,
    info: Option<String>,
}

impl MaildirName {
    /// Parses a directory entry's name. Dot files and names containing `/`
    /// or NUL are not messages.
    pub fn parse(name: &str) -> Result<MaildirName, BadName> {
        let bad = |reason| BadName {
            name: name.to_string(),
            reason,
        };
        check_entry(name).map_err(bad)?;
        let (key, info) = match name.rsplit_once(":2,") {
            Some((key, info)) => (key, Some(info.to_string())),
            None => (name, None),
        };
        if key.is_empty() {
            return Err(bad("empty unique part"));
        }
        Ok(MaildirName {
            key: key.to_string(),
            info,
        })
    }

    /// Parses an owned directory entry name, reusing its allocation for the
    /// key (the scan parses 100,000 names at a time).
    pub fn parse_owned(name: String) -> Result<MaildirName, BadName> {
        if let Err(e) = check_entry(&name) {
            return Err(BadName { name, reason: e });
        }
        let Some(at) = name.rfind(":2,") else {
            return Ok(MaildirName {
                key: name,
                info: None,
            });
        };
        if at == 0 {
            return Err(BadName {
                name,
                reason: "empty unique part",
            });
        }
        let info = name[at + 3..].to_string();
        let mut key = name;
        key.truncate(at);
        Ok(MaildirName {
            key,
            info: Some(info),
        })
    }

    /// Checks that `key` can be the unique part of a name ferry writes: not
    /// empty, at most 200 bytes, not starting with `.`, and free of `/`,
    /// `:` and NUL (the Maildir specification reserves `:` for the info
    /// part).
    pub fn check_key(key: &str) -> Result<(), BadName> {
        let reason = if key.is_empty() {
            "empty"
        } else if key.len() > 200 {
            "longer than 200 bytes"
        } else if key.starts_with('.') {
            "starts with '.'"
        } else if key.contains(['/', ':', '\0']) {
            "contains '/', ':' or NUL"
        } else {
            return Ok(());
        };
        Err(BadName {
            name: key.to_string(),
            reason,
        })
    }

    /// A name without info, as a fresh message in `new/` has.
    pub fn bare(key: &str) -> MaildirName {
        MaildirName {
            key: key.to_string(),
            info: None,
        }
    }

    /// Builds the name for `key` with `flags`, keeping the letters of
    /// `previous_info` that are not flags ferry maps.
    pub fn with_flags(key: &str, flags: &Flags, previous_info: Option<&str>) -> MaildirName {
        let mut letters: Vec<char> = flags.to_maildir_info().chars().collect();
        if let Some(previous) = previous_info {
            letters.extend(
                previous
                    .chars()
                    .filter(|c| ferry_core::Flag::from_maildir_letter(*c).is_none()),
            );
        }
        letters.sort_unstable();
        letters.dedup();
        MaildirName {
            key: key.to_string(),
            info: Some(letters.into_iter().collect()),
        }
    }

    /// The unique part: the message's stable key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The letters after `:2,`, if the name has an info part.
    pub fn info(&self) -> Option<&str> {
        self.info.as_deref()
    }

    /// The flags the info part names.
    pub fn flags(&self) -> Flags {
        Flags::from_maildir_info(self.info.as_deref().unwrap_or(""))
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        match &self.info {
            Some(info) => format!("{}:2,{}", self.key, info),
            None => self.key.clone(),
        }
    }
}

/// The checks every entry name passes before its parts are looked at.
fn check_entry(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.starts_with('.') {
        return Err("hidden or empty");
    }
    if name.contains(['/', '\0']) {
        return Err("contains '/' or NUL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::Flag;
    use proptest::prelude::*;

    #[test]
    fn names_from_real_clients() {
        let mbsync = MaildirName::parse("1700000000.123_4.host,U=77:2,S").expect("mbsync");
        assert_eq!(mbsync.key(), "1700000000.123_4.host,U=77");
        let oi = MaildirName::parse("1700000000_0.1.host,U=5,FMD5=abc:2,RS").expect("offlineimap");
        assert_eq!(oi.key(), "1700000000_0.1.host,U=5,FMD5=abc");
        assert!(oi.flags().contains(&Flag::Answered));
        let fresh = MaildirName::parse("1700000000.M1P2.host").expect("new/");
        assert_eq!(fresh.info(), None);
        assert!(fresh.flags().is_empty());
        let flagged_unread = MaildirName::parse("k:2,F").expect("neomutt in new/");
        assert_eq!(flagged_unread.flags().to_maildir_info(), "F");
    }

    #[test]
    fn non_messages_are_refused() {
        for bad in ["", ".hidden", ":2,S", "a/b", "a\0b"] {
            assert!(MaildirName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn renaming_for_flags_keeps_unknown_letters() {
        let flags: Flags = [Flag::Seen, Flag::Flagged].into_iter().collect();
        let name = MaildirName::with_flags("k", &flags, Some("aST"));
        assert_eq!(name.file_name(), "k:2,FSa");
    }

    #[test]
    fn owned_parse_agrees_with_borrowed() {
        for name in ["k", "k:2,", "k:2,FS", "a:2,b:2,S", ".x", ":2,S", "a/b", ""] {
            let borrowed = MaildirName::parse(name);
            let owned = MaildirName::parse_owned(name.to_string());
            assert_eq!(borrowed, owned, "{name:?}");
        }
    }

    #[test]
    fn keys_ferry_writes_are_checked() {
        assert!(MaildirName::check_key("1700000000.M1P2Q3.host").is_ok());
        for bad in ["", ".k", "a:b", "a/b", "a\0b"] {
            assert!(MaildirName::check_key(bad).is_err(), "{bad:?}");
        }
        assert!(MaildirName::check_key(&"k".repeat(201)).is_err());
    }

    proptest! {
        #[test]
        fn parse_inverts_file_name(key in "[A-Za-z0-9_][A-Za-z0-9_.,=-]{0,29}", info in "[A-Za-z]{0,8}") {
            let file = format!("{key}:2,{info}");
            let name = MaildirName::parse(&file).expect("valid");
            prop_assert_eq!(name.key(), key.as_str());
            prop_assert_eq!(name.file_name(), file);
        }
    }
}
