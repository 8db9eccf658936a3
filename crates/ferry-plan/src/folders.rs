//! The folder plan: which folders are synced, which are created, removed or
//! renamed on either side, and which vanished in a way that must stop the
//! run rather than delete anything.
//!
//! Names here are local names (design.md, "Local layout"): the caller maps
//! server names (delimiter, namespace prefix, modified UTF-7, `folder_map`)
//! before planning. Rules:
//!
//! - `folders` patterns select names: `*` matches any run of characters,
//!   `/` included; a leading `!` excludes; later patterns win; INBOX is in
//!   unless a pattern excludes it;
//! - a folder on one side only that the state does not know is new: it is
//!   created on the other side where `create` allows;
//! - a known folder that is gone from one side: when the server reports the
//!   same MAILBOXID under another name, it was renamed and the rename is
//!   repeated on the other side; when the other side's copy is empty, it is
//!   removed there where `remove` allows; when the other side's copy still
//!   holds messages the state paired, it **vanished**: that is reported and
//!   nothing is deleted (an unmounted disk, a broken server);
//! - a side that lists no folder at all while the state knows some vanished
//!   wholesale: nothing in the account is deleted.

use ferry_core::{PerSide, Side};
use std::collections::{BTreeMap, BTreeSet};

/// The `folders` patterns of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderFilter {
    patterns: Vec<(bool, String)>,
}

impl FolderFilter {
    /// Builds a filter from patterns such as `["*", "!Spam", "!Trash/*"]`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> FolderFilter {
        let patterns = patterns
            .iter()
            .map(|p| {
                let p = p.as_ref();
                match p.strip_prefix('!') {
                    Some(rest) => (false, rest.to_string()),
                    None => (true, p.to_string()),
                }
            })
            .collect();
        FolderFilter { patterns }
    }

    /// Whether `name` is synced: the last pattern that matches decides;
    /// INBOX is in when none does.
    pub fn includes(&self, name: &str) -> bool {
        let decided = self.patterns.iter().rev().find(|(_, p)| glob(p, name));
        match decided {
            Some((include, _)) => *include,
            None => name.eq_ignore_ascii_case("INBOX"),
        }
    }
}

impl Default for FolderFilter {
    fn default() -> Self {
        FolderFilter::new(&["*"])
    }
}

/// `*` matches any run of characters (`/` included); everything else is
/// literal.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == name;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A folder as one side lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    /// Its local name.
    pub name: String,
    /// The server's MAILBOXID (RFC 8474), where offered.
    pub mailbox_id: Option<String>,
    /// How many messages it holds.
    pub messages: u32,
}

/// A folder the state knows from earlier syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFolder {
    /// Its local name.
    pub name: String,
    /// The server's MAILBOXID when last synced.
    pub mailbox_id: Option<String>,
    /// How many message pairs the state holds for it.
    pub pairs: u32,
    /// Where its messages turned up under another name on one side (the
    /// caller looks, for the [`rename_candidates`], since folder lists
    /// alone cannot tell a rename from a delete and a create).
    pub renamed: Option<(Side, String)>,
}

/// What the policy allows for folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPolicy {
    /// Which folders are synced.
    pub filter: FolderFilter,
    /// Where missing folders may be created.
    pub create: PerSide<bool>,
    /// Where vanished folders may be removed (only empty ones).
    pub remove: PerSide<bool>,
}

impl Default for FolderPolicy {
    fn default() -> Self {
        FolderPolicy {
            filter: FolderFilter::default(),
            create: PerSide::new(true, true),
            remove: PerSide::new(false, false),
        }
    }
}

/// A change to a folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FolderAction {
    /// Rename a folder on `side` (the other side renamed it).
    Rename {
        /// Where.
        side: Side,
        /// Its name now.
        from: String,
        /// Its new name.
        to: String,
    },
    /// Create a folder on `side`.
    Create {
        /// Where.
        side: Side,
        /// Its name.
        name: String,
    },
    /// Remove an empty folder on `side` (the other side removed it).
    Remove {
        /// Where.
        side: Side,
        /// Its name.
        name: String,
    },
    /// Forget a folder gone from both sides.
    Forget {
        /// Its name.
        name: String,
    },
}

/// Something that stops a folder (or the account) from being synced, with
/// nothing deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vanished {
    /// Every folder is gone from `side` while the state knows some.
    Everything {
        /// The side that lists nothing.
        side: Side,
        /// How many folders the state knows.
        known: usize,
    },
    /// A folder with paired messages is gone from `side`.
    Folder {
        /// The side it is gone from.
        side: Side,
        /// Its name.
        name: String,
        /// How many pairs the state holds for it.
        pairs: u32,
    },
}

/// The folder plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderPlanResult {
    /// The folders to sync messages in, after the actions (sorted).
    pub synced: Vec<String>,
    /// Folder changes, sorted.
    pub actions: Vec<FolderAction>,
    /// What vanished; those folders are not synced.
    pub vanished: Vec<Vanished>,
}

/// Plans the folders of an account.
pub fn plan_folders(
    lists: PerSide<&[FolderInfo]>,
    known: &[KnownFolder],
    policy: &FolderPolicy,
) -> FolderPlanResult {
    let mut result = FolderPlanResult::default();
    for side in Side::BOTH {
        if lists[side].is_empty() && !known.is_empty() {
            result.vanished.push(Vanished::Everything {
                side,
                known: known.len(),
            });
        }
    }
    if !result.vanished.is_empty() {
        return result;
    }
    let by_name = lists.map(|_, list| {
        list.iter()
            .filter(|f| policy.filter.includes(&f.name))
            .map(|f| (f.name.as_str(), f))
            .collect::<BTreeMap<_, _>>()
    });
    let known_names: BTreeMap<&str, &KnownFolder> =
        known.iter().map(|k| (k.name.as_str(), k)).collect();
    let renamed = plan_renames(&by_name, known, &mut result);
    let names: BTreeSet<&str> = by_name
        .far
        .keys()
        .chain(by_name.near.keys())
        .copied()
        .collect();
    for name in names {
        if renamed.contains(name) {
            continue;
        }
        let present = PerSide::from_fn(|side| by_name[side].get(name).copied());
        plan_one(
            name,
            present,
            known_names.get(name).copied(),
            policy,
            &mut result,
        );
    }
    for k in known.iter().filter(|k| {
        !by_name.far.contains_key(k.name.as_str()) && !by_name.near.contains_key(k.name.as_str())
    }) {
        if !renamed.contains(k.name.as_str()) && policy.filter.includes(&k.name) {
            result.actions.push(FolderAction::Forget {
                name: k.name.clone(),
            });
        }
    }
    result.actions.sort();
    result.synced.sort();
    result.synced.dedup();
    result
}

/// Renames: a known folder's MAILBOXID now under another name on the
/// server, or its messages seen under another name on either side
/// ([`KnownFolder::renamed`]). The rename is repeated on the other side
/// when the old name is still there and the new one is free. Returns the
/// names involved (handled here).
fn plan_renames<'a>(
    by_name: &PerSide<BTreeMap<&'a str, &'a FolderInfo>>,
    known: &'a [KnownFolder],
    result: &mut FolderPlanResult,
) -> BTreeSet<&'a str> {
    let mut handled = BTreeSet::new();
    for k in known {
        let Some((side, to)) = renamed_by_id(by_name, k)
            .or_else(|| k.renamed.as_ref().map(|(side, to)| (*side, to.as_str())))
        else {
            continue;
        };
        let there = |s: Side, name: &str| by_name[s].contains_key(name);
        let other = side.other();
        let one_side = there(other, &k.name) && !there(other, to);
        // Renamed on both sides (by hand, or by a run killed before it
        // saved the rename): only the state follows.
        let both_sides = !there(other, &k.name) && there(other, to);
        if !there(side, &k.name) && there(side, to) && (one_side || both_sides) {
            result.actions.push(FolderAction::Rename {
                side: other,
                from: k.name.clone(),
                to: to.to_string(),
            });
            result.synced.push(to.to_string());
            handled.insert(k.name.as_str());
            handled.extend(by_name[side].get_key_value(to).map(|(name, _)| *name));
        }
    }
    handled
}

/// The server's new name of a known folder, by MAILBOXID.
fn renamed_by_id<'a>(
    by_name: &PerSide<BTreeMap<&'a str, &'a FolderInfo>>,
    known: &KnownFolder,
) -> Option<(Side, &'a str)> {
    let id = known.mailbox_id.as_ref()?;
    if by_name.far.contains_key(known.name.as_str()) {
        return None;
    }
    by_name
        .far
        .values()
        .find(|f| f.mailbox_id.as_ref() == Some(id) && f.name != known.name)
        .map(|f| (Side::Far, f.name.as_str()))
}

/// Folders that may have been renamed on one side: a known folder with
/// paired messages gone from `side` but still on the other, and a folder
/// new on `side` only. The caller compares their messages and sets
/// [`KnownFolder::renamed`] where they match.
pub fn rename_candidates(
    lists: PerSide<&[FolderInfo]>,
    known: &[KnownFolder],
    filter: &FolderFilter,
) -> Vec<(Side, String, String)> {
    let names = lists.map(|_, list| {
        list.iter()
            .filter(|f| filter.includes(&f.name))
            .map(|f| f.name.as_str())
            .collect::<BTreeSet<_>>()
    });
    let known_names: BTreeSet<&str> = known.iter().map(|k| k.name.as_str()).collect();
    let mut out = Vec::new();
    for side in Side::BOTH {
        let other = side.other();
        let fresh: Vec<&str> = names[side]
            .iter()
            .filter(|n| !names[other].contains(*n) && !known_names.contains(*n))
            .copied()
            .collect();
        for k in known.iter().filter(|k| k.pairs > 0) {
            let name = k.name.as_str();
            if names[side].contains(name) || !names[other].contains(name) {
                continue;
            }
            out.extend(
                fresh
                    .iter()
                    .map(|to| (side, k.name.clone(), to.to_string())),
            );
        }
    }
    // Gone from both sides, with a new name on both: looked at in the
    // Maildir, where file names identify every message.
    let on_both: Vec<&str> = names
        .far
        .intersection(&names.near)
        .filter(|n| !known_names.contains(*n))
        .copied()
        .collect();
    for k in known.iter().filter(|k| k.pairs > 0) {
        let name = k.name.as_str();
        if names.far.contains(name) || names.near.contains(name) {
            continue;
        }
        out.extend(
            on_both
                .iter()
                .map(|to| (Side::Near, k.name.clone(), to.to_string())),
        );
    }
    out
}

fn plan_one(
    name: &str,
    present: PerSide<Option<&FolderInfo>>,
    known: Option<&KnownFolder>,
    policy: &FolderPolicy,
    result: &mut FolderPlanResult,
) {
    match (present.far, present.near, known) {
        (Some(_), Some(_), _) => result.synced.push(name.to_string()),
        (Some(_), None, None) => create(Side::Near, name, policy, result),
        (None, Some(_), None) => create(Side::Far, name, policy, result),
        (Some(kept), None, Some(k)) => gone(Side::Near, kept, k, policy, result),
        (None, Some(kept), Some(k)) => gone(Side::Far, kept, k, policy, result),
        (None, None, _) => {}
    }
}

fn create(side: Side, name: &str, policy: &FolderPolicy, result: &mut FolderPlanResult) {
    if policy.create[side] {
        result.actions.push(FolderAction::Create {
            side,
            name: name.to_string(),
        });
        result.synced.push(name.to_string());
    }
}

/// A known folder gone from `gone_from`, still on the other side as `kept`.
fn gone(
    gone_from: Side,
    kept: &FolderInfo,
    known: &KnownFolder,
    policy: &FolderPolicy,
    result: &mut FolderPlanResult,
) {
    let kept_side = gone_from.other();
    if kept.messages == 0 {
        if policy.remove[kept_side] {
            result.actions.push(FolderAction::Remove {
                side: kept_side,
                name: kept.name.clone(),
            });
        }
        return;
    }
    if known.pairs > 0 {
        result.vanished.push(Vanished::Folder {
            side: gone_from,
            name: kept.name.clone(),
            pairs: known.pairs,
        });
        return;
    }
    // Known, but nothing was paired in it: treat it as new again.
    create(gone_from, &kept.name, policy, result);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, messages: u32) -> FolderInfo {
        FolderInfo {
            name: name.into(),
            mailbox_id: None,
            messages,
        }
    }

    fn known(name: &str, pairs: u32) -> KnownFolder {
        KnownFolder {
            name: name.into(),
            mailbox_id: None,
            pairs,
            renamed: None,
        }
    }

    #[test]
    fn patterns_follow_the_contract() {
        let filter = FolderFilter::new(&["*", "!Spam", "!Trash/*"]);
        assert!(
            filter.includes("INBOX") && filter.includes("Archive/2024") && filter.includes("Trash")
        );
        assert!(!filter.includes("Spam") && !filter.includes("Trash/Old/x"));
        let only = FolderFilter::new(&["Work*"]);
        assert!(only.includes("INBOX"), "INBOX is in unless excluded");
        assert!(only.includes("Work/Projects") && !only.includes("Private"));
        assert!(!FolderFilter::new(&["*", "!INBOX"]).includes("INBOX"));
        assert!(
            FolderFilter::new(&["!*", "A"]).includes("A"),
            "later patterns win"
        );
        assert!(
            glob("a*b*c", "aXbYc") && !glob("a*b*c", "aXc") && glob("*", "") && !glob("ab", "abc")
        );
    }

    #[test]
    fn new_folders_are_created_where_allowed() {
        let far = [info("INBOX", 3), info("Sent", 1)];
        let near = [info("INBOX", 3), info("Notes", 0)];
        let plan = plan_folders(PerSide::new(&far, &near), &[], &FolderPolicy::default());
        assert_eq!(
            plan.actions,
            [
                FolderAction::Create {
                    side: Side::Far,
                    name: "Notes".into()
                },
                FolderAction::Create {
                    side: Side::Near,
                    name: "Sent".into()
                },
            ]
        );
        assert_eq!(plan.synced, ["INBOX", "Notes", "Sent"]);
        let policy = FolderPolicy {
            create: PerSide::new(false, true),
            ..FolderPolicy::default()
        };
        let plan = plan_folders(PerSide::new(&far, &near), &[], &policy);
        assert_eq!(
            plan.actions,
            [FolderAction::Create {
                side: Side::Near,
                name: "Sent".into()
            }]
        );
    }

    #[test]
    fn a_vanished_folder_with_mail_is_reported_not_deleted() {
        let far = [info("INBOX", 3), info("Archive", 500)];
        let near = [info("INBOX", 3)];
        let known = [known("INBOX", 3), known("Archive", 500)];
        let policy = FolderPolicy {
            remove: PerSide::new(true, true),
            ..FolderPolicy::default()
        };
        let plan = plan_folders(PerSide::new(&far, &near), &known, &policy);
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert_eq!(
            plan.vanished,
            [Vanished::Folder {
                side: Side::Near,
                name: "Archive".into(),
                pairs: 500
            }]
        );
        assert_eq!(plan.synced, ["INBOX"]);
    }

    #[test]
    fn an_empty_vanished_folder_is_removed_only_where_allowed() {
        let far = [info("INBOX", 1), info("Old", 0)];
        let near = [info("INBOX", 1)];
        let known = [known("INBOX", 1), known("Old", 0)];
        let none = plan_folders(PerSide::new(&far, &near), &known, &FolderPolicy::default());
        assert!(
            none.actions.is_empty() && none.vanished.is_empty(),
            "{none:?}"
        );
        let policy = FolderPolicy {
            remove: PerSide::new(true, false),
            ..FolderPolicy::default()
        };
        let plan = plan_folders(PerSide::new(&far, &near), &known, &policy);
        assert_eq!(
            plan.actions,
            [FolderAction::Remove {
                side: Side::Far,
                name: "Old".into()
            }]
        );
    }

    #[test]
    fn a_side_that_lists_nothing_stops_everything() {
        let far = [info("INBOX", 10)];
        let known = [known("INBOX", 10)];
        let plan = plan_folders(PerSide::new(&far, &[]), &known, &FolderPolicy::default());
        assert_eq!(
            plan.vanished,
            [Vanished::Everything {
                side: Side::Near,
                known: 1
            }]
        );
        assert!(plan.actions.is_empty() && plan.synced.is_empty());
    }

    #[test]
    fn a_server_rename_is_repeated_locally_by_mailboxid() {
        let far = [
            info("INBOX", 1),
            FolderInfo {
                name: "Projects/2025".into(),
                mailbox_id: Some("F123".into()),
                messages: 7,
            },
        ];
        let near = [info("INBOX", 1), info("Projects", 7)];
        let known = [
            known("INBOX", 1),
            KnownFolder {
                name: "Projects".into(),
                mailbox_id: Some("F123".into()),
                pairs: 7,
                renamed: None,
            },
        ];
        let plan = plan_folders(PerSide::new(&far, &near), &known, &FolderPolicy::default());
        assert_eq!(
            plan.actions,
            [FolderAction::Rename {
                side: Side::Near,
                from: "Projects".into(),
                to: "Projects/2025".into()
            }]
        );
        assert!(plan.vanished.is_empty());
        assert_eq!(plan.synced, ["INBOX", "Projects/2025"]);
    }

    #[test]
    fn excluded_folders_are_left_alone_and_gone_ones_forgotten() {
        let far = [info("INBOX", 1), info("Spam", 9)];
        let near = [info("INBOX", 1)];
        let policy = FolderPolicy {
            filter: FolderFilter::new(&["*", "!Spam"]),
            ..FolderPolicy::default()
        };
        let plan = plan_folders(
            PerSide::new(&far, &near),
            &[known("INBOX", 1), known("Gone", 0)],
            &policy,
        );
        assert_eq!(
            plan.actions,
            [FolderAction::Forget {
                name: "Gone".into()
            }]
        );
        assert_eq!(plan.synced, ["INBOX"]);
    }

    #[test]
    fn a_rename_seen_by_content_is_repeated_on_the_other_side() {
        let far = [info("INBOX", 1), info("Work", 4)];
        let near = [info("INBOX", 1), info("Jobs", 4)];
        let candidates = rename_candidates(
            PerSide::new(&far, &near),
            &[known("INBOX", 1), known("Work", 4)],
            &FolderFilter::default(),
        );
        assert_eq!(candidates, [(Side::Near, "Work".into(), "Jobs".into())]);
        let mut renamed = known("Work", 4);
        renamed.renamed = Some((Side::Near, "Jobs".into()));
        let plan = plan_folders(
            PerSide::new(&far, &near),
            &[known("INBOX", 1), renamed],
            &FolderPolicy::default(),
        );
        assert_eq!(
            plan.actions,
            [FolderAction::Rename {
                side: Side::Far,
                from: "Work".into(),
                to: "Jobs".into()
            }]
        );
        assert!(plan.vanished.is_empty());
        assert_eq!(plan.synced, ["INBOX", "Jobs"]);
        // Without the content match it stays a vanished folder and a new one.
        let plan = plan_folders(
            PerSide::new(&far, &near),
            &[known("INBOX", 1), known("Work", 4)],
            &FolderPolicy::default(),
        );
        assert_eq!(plan.vanished.len(), 1, "{plan:?}");
    }
}
