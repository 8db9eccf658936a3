//! Message flags: IMAP system flags, keywords, and their Maildir letters.
//!
//! Maildir `D F P R S T` map to `\Draft \Flagged $Forwarded \Answered \Seen
//! \Deleted`. Every other IMAP keyword is kept as a [`Flag::Keyword`] so that
//! nothing is ever dropped, even where a Maildir file name cannot hold it.
//! `\Recent` is session state, not a flag: it is never parsed into a
//! [`Flags`] and so can never be sent.

/// One message flag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// `\Draft`, Maildir `D`.
    Draft,
    /// `\Flagged`, Maildir `F`.
    Flagged,
    /// `$Forwarded`, Maildir `P` (passed).
    Forwarded,
    /// `\Answered`, Maildir `R` (replied).
    Answered,
    /// `\Seen`, Maildir `S`.
    Seen,
    /// `\Deleted`, Maildir `T` (trashed).
    Deleted,
    /// Any other IMAP keyword, spelled as the server sent it.
    Keyword(String),
}

impl Flag {
    /// The Maildir info letter, for the six flags that have one.
    pub fn maildir_letter(&self) -> Option<char> {
        Some(match self {
            Flag::Draft => 'D',
            Flag::Flagged => 'F',
            Flag::Forwarded => 'P',
            Flag::Answered => 'R',
            Flag::Seen => 'S',
            Flag::Deleted => 'T',
            Flag::Keyword(_) => return None,
        })
    }

    /// The flag for a Maildir info letter, if it is one of `D F P R S T`.
    pub fn from_maildir_letter(letter: char) -> Option<Flag> {
        Some(match letter {
            'D' => Flag::Draft,
            'F' => Flag::Flagged,
            'P' => Flag::Forwarded,
            'R' => Flag::Answered,
            'S' => Flag::Seen,
            'T' => Flag::Deleted,
            _ => return None,
        })
    }

    /// The IMAP spelling (`\Seen`, `$Forwarded`, or the keyword itself).
    pub fn imap_name(&self) -> &str {
        match self {
            Flag::Draft => "\\Draft",
            Flag::Flagged => "\\Flagged",
            Flag::Forwarded => "$Forwarded",
            Flag::Answered => "\\Answered",
            Flag::Seen => "\\Seen",
            Flag::Deleted => "\\Deleted",
            Flag::Keyword(k) => k,
        }
    }

    /// Parses an IMAP flag. System flags are case-insensitive; `\Recent`
    /// and unknown system flags (`\*`, `\Foo`) are not message flags and
    /// give `None`.
    pub fn from_imap(name: &str) -> Option<Flag> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "\\draft" => Flag::Draft,
            "\\flagged" => Flag::Flagged,
            "$forwarded" => Flag::Forwarded,
            "\\answered" => Flag::Answered,
            "\\seen" => Flag::Seen,
            "\\deleted" => Flag::Deleted,
            _ if name.starts_with('\\') || name.is_empty() => return None,
            _ => Flag::Keyword(name.to_string()),
        })
    }
}

/// A set of flags, ordered so that rendering is deterministic: the six
/// system flags in [`Flag`] order, then the keywords sorted.
///
/// The system flags are bits and the keywords a boxed vector that is
/// absent (no allocation) for most messages: an account's snapshots, plans
/// and state hold one of these per message and side, so it is kept to 16
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Flags {
    system: u8,
    keywords: Keywords,
}

/// Only [`Flag::Keyword`]s, sorted, without duplicates; `None` rather than
/// an empty vector, so that equal sets compare, hash and order alike (an
/// empty set orders before any other, as an empty vector does).
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[expect(
    clippy::box_collection,
    reason = "the box is one pointer where a vector is three: 16-byte flags"
)]
struct Keywords(Option<Box<Vec<Flag>>>);

impl Keywords {
    fn as_slice(&self) -> &[Flag] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    fn insert(&mut self, at: usize, flag: Flag) {
        self.0.get_or_insert_with(Box::default).insert(at, flag);
    }

    fn remove(&mut self, at: usize) {
        if let Some(keywords) = &mut self.0 {
            keywords.remove(at);
            if keywords.is_empty() {
                self.0 = None;
            }
        }
    }
}

impl std::fmt::Debug for Keywords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The system flags, in the order of their bits.
static SYSTEM: [Flag; 6] = [
    Flag::Draft,
    Flag::Flagged,
    Flag::Forwarded,
    Flag::Answered,
    Flag::Seen,
    Flag::Deleted,
];

/// The bit of a system flag; `None` for a keyword.
fn bit(flag: &Flag) -> Option<u8> {
    SYSTEM.iter().position(|f| f == flag).map(|i| 1 << i)
}

impl Flags {
    /// No flags.
    pub fn new() -> Self {
        Flags::default()
    }

    /// Parses the letters after `:2,` of a Maildir name. Letters other than
    /// `D F P R S T` are not flags here; the Maildir crate keeps them
    /// verbatim in the file name.
    pub fn from_maildir_info(info: &str) -> Flags {
        info.chars().filter_map(Flag::from_maildir_letter).collect()
    }

    /// The Maildir letters of these flags, in ASCII order as the Maildir
    /// specification requires. Keywords have no letter and are left out.
    pub fn to_maildir_info(&self) -> String {
        let mut letters: Vec<char> = self.iter().filter_map(Flag::maildir_letter).collect();
        letters.sort_unstable();
        letters.into_iter().collect()
    }

    /// Whether `flag` is set.
    pub fn contains(&self, flag: &Flag) -> bool {
        match bit(flag) {
            Some(b) => self.system & b != 0,
            None => self.keywords.as_slice().binary_search(flag).is_ok(),
        }
    }

    /// Sets `flag`; returns whether it was newly set.
    pub fn insert(&mut self, flag: Flag) -> bool {
        match bit(&flag) {
            Some(b) => {
                let new = self.system & b == 0;
                self.system |= b;
                new
            }
            None => match self.keywords.as_slice().binary_search(&flag) {
                Ok(_) => false,
                Err(at) => {
                    self.keywords.insert(at, flag);
                    true
                }
            },
        }
    }

    /// Clears `flag`; returns whether it was set.
    pub fn remove(&mut self, flag: &Flag) -> bool {
        match bit(flag) {
            Some(b) => {
                let was = self.system & b != 0;
                self.system &= !b;
                was
            }
            None => match self.keywords.as_slice().binary_search(flag) {
                Ok(at) => {
                    self.keywords.remove(at);
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// The flags in a deterministic order.
    pub fn iter(&self) -> impl Iterator<Item = &Flag> {
        let system = self.system;
        SYSTEM
            .iter()
            .enumerate()
            .filter(move |(i, _)| system & (1 << i) != 0)
            .map(|(_, flag)| flag)
            .chain(self.keywords.as_slice().iter())
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.system == 0 && self.keywords.0.is_none()
    }

    /// The system flags alone (those a Maildir name can hold): what a
    /// store without keywords shows of these flags.
    pub fn without_keywords(&self) -> Flags {
        Flags {
            system: self.system,
            keywords: Keywords::default(),
        }
    }

    /// The keywords (flags without a Maildir letter).
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.as_slice().iter().filter_map(|f| match f {
            Flag::Keyword(k) => Some(k.as_str()),
            _ => None,
        })
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut flags = Flags::new();
        for flag in iter {
            flags.insert(flag);
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn maildir_letters_map_to_imap_flags() {
        let flags = Flags::from_maildir_info("DFPRST");
        let names: Vec<&str> = flags.iter().map(Flag::imap_name).collect();
        assert_eq!(
            names,
            [
                "\\Draft",
                "\\Flagged",
                "$Forwarded",
                "\\Answered",
                "\\Seen",
                "\\Deleted"
            ]
        );
    }

    #[test]
    fn unknown_letters_are_not_flags() {
        assert_eq!(Flags::from_maildir_info("aSz").to_maildir_info(), "S");
    }

    #[test]
    fn recent_is_never_a_flag() {
        assert_eq!(Flag::from_imap("\\Recent"), None);
        assert_eq!(Flag::from_imap("\\recent"), None);
        assert_eq!(Flag::from_imap("\\*"), None);
        assert_eq!(Flag::from_imap("\\SEEN"), Some(Flag::Seen));
        assert_eq!(Flag::from_imap("$forwarded"), Some(Flag::Forwarded));
        assert_eq!(
            Flag::from_imap("$Junk"),
            Some(Flag::Keyword("$Junk".into()))
        );
    }

    #[test]
    fn keywords_have_no_letter_but_are_kept() {
        let flags: Flags = [Flag::Seen, Flag::Keyword("$Label1".into())]
            .into_iter()
            .collect();
        assert_eq!(flags.to_maildir_info(), "S");
        assert_eq!(flags.keywords().collect::<Vec<_>>(), ["$Label1"]);
    }

    #[test]
    fn a_set_whose_last_keyword_went_is_the_same_as_one_that_never_had_one() {
        use std::hash::{BuildHasher, RandomState};
        let mut had = Flags::from_maildir_info("S");
        let keyword = Flag::Keyword("$Label1".into());
        assert!(had.insert(keyword.clone()));
        assert!(had > Flags::from_maildir_info("S"));
        assert!(had.remove(&keyword));
        let never = Flags::from_maildir_info("S");
        assert_eq!(had, never);
        assert_eq!(had.cmp(&never), std::cmp::Ordering::Equal);
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&had), hasher.hash_one(&never));
        assert!(Flags::new().is_empty());
        assert_eq!(format!("{had:?}"), format!("{never:?}"));
    }

    #[test]
    fn a_set_of_flags_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<Flags>(), 16);
    }

    proptest! {
        #[test]
        fn maildir_info_round_trips(info in "[DFPRST]{0,6}") {
            let flags = Flags::from_maildir_info(&info);
            let rendered = flags.to_maildir_info();
            prop_assert_eq!(Flags::from_maildir_info(&rendered), flags);
            let mut sorted: Vec<char> = rendered.chars().collect();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.into_iter().collect::<String>(), rendered);
        }

        /// The compact set behaves as an ordered set of flags would.
        #[test]
        fn flags_behave_as_an_ordered_set(ops in proptest::collection::vec((any::<bool>(), 0usize..9), 0..40)) {
            let all = |i: usize| match i {
                6 => Flag::Keyword("$Junk".into()),
                7 => Flag::Keyword("$Label1".into()),
                8 => Flag::Keyword("Work".into()),
                i => SYSTEM[i].clone(),
            };
            let mut flags = Flags::new();
            let mut model = std::collections::BTreeSet::new();
            for (add, i) in ops {
                let flag = all(i);
                if add {
                    prop_assert_eq!(flags.insert(flag.clone()), model.insert(flag));
                } else {
                    prop_assert_eq!(flags.remove(&flag), model.remove(&flag));
                }
                prop_assert!(flags.iter().eq(model.iter()));
                prop_assert_eq!(flags.is_empty(), model.is_empty());
                prop_assert!((0..9).all(|i| flags.contains(&all(i)) == model.contains(&all(i))));
            }
        }
    }
}
