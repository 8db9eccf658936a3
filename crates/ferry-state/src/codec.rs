//! The column forms of flags, keys and ids, both ways.
//!
//! Flags are stored as the Maildir letters of the six standard flags plus a
//! space-separated keyword list, so `sqlite3` shows them plainly. Reading
//! checks everything a file could get wrong and says what it found; writing
//! refuses values the columns cannot hold faithfully.

use crate::keys::MessageKey;
use ferry_core::{Flag, Flags, Uid};

/// The `flags` and `keywords` columns of a flag set; `Err` names a keyword
/// that cannot be stored (IMAP keywords are atoms: never empty, no spaces).
pub(crate) fn flags_to_columns(flags: &Flags) -> Result<(String, Option<String>), String> {
    let mut keywords = String::new();
    for keyword in flags.keywords() {
        if keyword.is_empty() || keyword.chars().any(char::is_whitespace) {
            return Err(format!("keyword {keyword:?}: IMAP keywords hold no spaces"));
        }
        if !keywords.is_empty() {
            keywords.push(' ');
        }
        keywords.push_str(keyword);
    }
    let keywords = (!keywords.is_empty()).then_some(keywords);
    Ok((flags.to_maildir_info(), keywords))
}

/// The flag set of a `flags` and `keywords` column pair; `Err` says what is
/// wrong with them.
pub(crate) fn flags_from_columns(letters: &str, keywords: Option<&str>) -> Result<Flags, String> {
    let mut flags = Flags::new();
    for letter in letters.chars() {
        let flag = Flag::from_maildir_letter(letter)
            .ok_or_else(|| format!("flags {letters:?}: {letter:?} is not a flag letter"))?;
        flags.insert(flag);
    }
    for keyword in keywords.unwrap_or("").split(' ').filter(|k| !k.is_empty()) {
        // A system flag spelled as a keyword (`$forwarded`) is that flag.
        flags
            .insert(Flag::from_imap(keyword).unwrap_or_else(|| Flag::Keyword(keyword.to_string())));
    }
    Ok(flags)
}

/// A UID column value; `Err` describes an impossible one.
pub(crate) fn uid_from_column(value: i64) -> Result<Uid, String> {
    u32::try_from(value)
        .ok()
        .and_then(|v| Uid::new(v).ok())
        .ok_or_else(|| format!("UID {value} is out of range"))
}

/// The `*_uid` and `*_key` columns of one side's key.
pub(crate) fn key_to_columns(key: Option<&MessageKey>) -> (Option<u32>, Option<&str>) {
    match key {
        Some(MessageKey::Uid(uid)) => (Some(uid.get()), None),
        Some(MessageKey::Name(name)) => (None, Some(name)),
        None => (None, None),
    }
}

/// One side's key from its `*_uid` and `*_key` columns.
pub(crate) fn key_from_columns(
    uid: Option<i64>,
    name: Option<impl Into<Box<str>> + std::fmt::Debug>,
) -> Result<Option<MessageKey>, String> {
    match (uid, name) {
        (Some(uid), None) => Ok(Some(MessageKey::Uid(uid_from_column(uid)?))),
        (None, Some(name)) => Ok(Some(MessageKey::Name(name.into()))),
        (None, None) => Ok(None),
        (Some(uid), Some(name)) => Err(format!("both UID {uid} and file {name:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_with_keywords() {
        let flags: Flags = [
            Flag::Seen,
            Flag::Deleted,
            Flag::Keyword("$Junk".into()),
            Flag::Keyword("NonJunk".into()),
        ]
        .into_iter()
        .collect();
        let (letters, keywords) = flags_to_columns(&flags).expect("storable");
        assert_eq!(letters, "ST");
        assert_eq!(keywords.as_deref(), Some("$Junk NonJunk"));
        assert_eq!(flags_from_columns(&letters, keywords.as_deref()), Ok(flags));
        assert_eq!(flags_to_columns(&Flags::new()), Ok((String::new(), None)));
    }

    #[test]
    fn bad_values_are_named() {
        let spaced: Flags = [Flag::Keyword("a b".into())].into_iter().collect();
        assert!(flags_to_columns(&spaced).is_err());
        assert!(flags_from_columns("SX", None).is_err());
        assert!(uid_from_column(0).is_err());
        assert!(uid_from_column(1 << 32).is_err());
        assert!(key_from_columns(Some(1), Some("k")).is_err());
    }

    #[test]
    fn a_system_flag_stored_as_a_keyword_is_that_flag() {
        let flags = flags_from_columns("S", Some("$forwarded \\SEEN $Junk")).expect("flags");
        let expected: Flags = [Flag::Forwarded, Flag::Seen, Flag::Keyword("$Junk".into())]
            .into_iter()
            .collect();
        assert_eq!(flags, expected);
    }
}
