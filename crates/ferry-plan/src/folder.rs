//! The per-folder three-way diff: both sides now, against the pairs of the
//! last sync, to a sorted list of actions.
//!
//! Rules (design.md, "The rules the planner follows"), written once for
//! both sides:
//!
//! - a pair present on both sides: flags merge per flag against the pair's
//!   last synced flags; a change reaches the other side when the policy lets
//!   changes flow there;
//! - a pair gone from one side: if the other side changed the message since
//!   (its flags differ from the last synced ones other than by a new
//!   `\Deleted`, which agrees with the deletion), the change wins and the
//!   message is copied back; otherwise the deletion is propagated, removed
//!   for good where the expunge policy allows it and marked `\Deleted` (`T`)
//!   elsewhere; a marked message stays paired so it is never copied back;
//! - a pair gone from both sides is forgotten;
//! - a message in no pair is first matched to an unpaired message of the
//!   same content on the other side (a lost or reset state re-pairs, it does
//!   not copy); the rest is new and copied, unless too large or marked
//!   deleted;
//! - the mass-delete guard holds a side's removals when they would take more
//!   than half of its messages and more than 20.

use crate::flags;
use ferry_core::{Flag, Flags, MessageKey, MessageMeta, PerSide, Side};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The guard's thresholds (design.md): more than this share of a folder...
pub const GUARD_SHARE: f64 = 0.5;
/// ...and more than this many messages.
pub const GUARD_MIN: usize = 20;

/// What the account's policy allows for this folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Whether new messages, flag changes and deletions may flow *into*
    /// each side (`sync = "both"`: both; `"pull"`: near only; `"push"`: far
    /// only).
    pub flow_into: PerSide<bool>,
    /// Whether ferry may remove messages for good on each side; elsewhere
    /// it only marks them `\Deleted` / `T`.
    pub expunge: PerSide<bool>,
    /// Messages larger than this (CRLF bytes) are not copied.
    pub max_size: Option<u64>,
    /// `--allow-mass-delete`: the guard lets removals through.
    pub allow_mass_delete: bool,
    /// Whether each side holds keywords; where not (Maildir names), a
    /// message moved in there still has the keywords of its pair.
    pub keeps_keywords: PerSide<bool>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            flow_into: PerSide::new(true, true),
            expunge: PerSide::new(true, true),
            max_size: None,
            allow_mass_delete: false,
            keeps_keywords: PerSide::new(true, true),
        }
    }
}

/// A message pair from the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The message's key on each side.
    pub keys: PerSide<MessageKey>,
    /// The flags both sides had when last synced.
    pub flags: Flags,
    /// What the state knows of its content, to recognise it elsewhere.
    pub content: Content,
}

/// What identifies a message's content across folders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    /// The Message-ID header.
    pub message_id: Option<Box<str>>,
    /// The size with CRLF line endings.
    pub size: Option<u64>,
    /// The content fingerprint.
    pub fingerprint: Option<ferry_core::Fingerprint>,
    /// The server's EMAILID (RFC 8474), where offered.
    pub email_id: Option<Box<str>>,
}

impl Content {
    /// Whether `message` is provably this content (see
    /// [`MessageMeta::same_content`]).
    pub fn matches(&self, message: &MessageMeta) -> bool {
        let known = ferry_core::ContentIdentity {
            email_id: self.email_id.as_deref(),
            fingerprint: self.fingerprint.as_ref(),
            message_id: self.message_id.as_deref(),
            size: self.size,
        };
        known.same_content(&message.identity())
    }
}

/// Why a message is not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    /// Larger than `max_size`.
    TooLarge,
    /// Marked deleted where it is: not worth copying.
    MarkedDeleted,
}

/// One step of a folder's plan. The executor carries them out; `Pair`,
/// `Unpair` and the pair updates of the others are state changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Forget a pair whose message is gone from both sides.
    Unpair {
        /// The pair's keys.
        keys: PerSide<MessageKey>,
    },
    /// Record a pair: two messages that are the same (re-paired after a
    /// lost state), or a pair whose last synced flags changed.
    Pair {
        /// The keys on both sides.
        keys: PerSide<MessageKey>,
        /// The flags both sides will have.
        flags: Flags,
    },
    /// Change flags on one side.
    SetFlags {
        /// Where.
        side: Side,
        /// Which message.
        key: MessageKey,
        /// Flags to set.
        add: Flags,
        /// Flags to clear.
        remove: Flags,
    },
    /// Copy a message to the other side (a new pair results).
    Copy {
        /// Where the message is.
        from: Side,
        /// Which message.
        key: MessageKey,
        /// The flags to give the copy.
        flags: Flags,
        /// The pair it replaces (change won over a deletion), if any;
        /// boxed, as it is rare and a first sync plans a copy per message.
        replaces: Option<Box<PerSide<MessageKey>>>,
    },
    /// Remove a message for good (its pair goes with it).
    Remove {
        /// Where.
        side: Side,
        /// Which message.
        key: MessageKey,
    },
    /// Mark a message deleted where the policy forbids removing it; the
    /// pair stays, so the message is never copied back.
    MarkDeleted {
        /// Where.
        side: Side,
        /// Which message.
        key: MessageKey,
    },
    /// A message that is not copied, and why.
    Skip {
        /// Where it is.
        side: Side,
        /// Which message.
        key: MessageKey,
        /// Why.
        reason: SkipReason,
    },
}

impl Action {
    /// The same action with the sides exchanged.
    pub fn mirrored(self) -> Action {
        match self {
            Action::Unpair { keys } => Action::Unpair {
                keys: keys.swapped(),
            },
            Action::Pair { keys, flags } => Action::Pair {
                keys: keys.swapped(),
                flags,
            },
            Action::SetFlags {
                side,
                key,
                add,
                remove,
            } => Action::SetFlags {
                side: side.other(),
                key,
                add,
                remove,
            },
            Action::Copy {
                from,
                key,
                flags,
                replaces,
            } => Action::Copy {
                from: from.other(),
                key,
                flags,
                replaces: replaces.map(|keys| Box::new(keys.swapped())),
            },
            Action::Remove { side, key } => Action::Remove {
                side: side.other(),
                key,
            },
            Action::MarkDeleted { side, key } => Action::MarkDeleted {
                side: side.other(),
                key,
            },
            Action::Skip { side, key, reason } => Action::Skip {
                side: side.other(),
                key,
                reason,
            },
        }
    }
}

/// Removals the guard held back on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The side that would have lost the messages.
    pub side: Side,
    /// How many removals were held.
    pub removals: usize,
    /// How many messages the side has in this folder.
    pub total: usize,
}

/// The plan of one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderPlan {
    /// The actions, sorted.
    pub actions: Vec<Action>,
    /// Removals the mass-delete guard held back.
    pub held: Vec<Held>,
}

/// Plans one folder: `now` are both sides' snapshots, `pairs` the state of
/// the last sync.
pub fn plan_folder(now: PerSide<&[MessageMeta]>, pairs: &[Pair], policy: &Policy) -> FolderPlan {
    let mut actions = diff_folder(now, pairs, policy);
    let held = apply_guard(&mut actions, now.map(|_, list| list.len()), policy);
    actions.sort();
    FolderPlan { actions, held }
}

/// The folder's actions before the guard and sorting (moves across
/// folders are found in these).
pub(crate) fn diff_folder(
    now: PerSide<&[MessageMeta]>,
    pairs: &[Pair],
    policy: &Policy,
) -> Vec<Action> {
    // Hash maps: Maildir names share long prefixes, which makes ordered
    // lookups compare many bytes.
    let index = now.map(|_, list| list.iter().map(|m| (&m.key, m)).collect::<HashMap<_, _>>());
    let mut actions = Vec::new();
    let mut paired: PerSide<HashSet<&MessageKey>> =
        PerSide::from_fn(|side| HashSet::with_capacity(pairs.len().min(now[side].len())));
    for pair in pairs {
        for side in Side::BOTH {
            paired[side].insert(&pair.keys[side]);
        }
        let found = PerSide::from_fn(|side| index[side].get(&pair.keys[side]).copied());
        plan_pair(pair, found, policy, &mut actions);
    }
    let unpaired = PerSide::from_fn(|side| {
        now[side]
            .iter()
            .filter(|m| !paired[side].contains(&m.key))
            .collect::<Vec<_>>()
    });
    plan_unpaired(unpaired, policy, &mut actions);
    actions
}

fn plan_pair(
    pair: &Pair,
    found: PerSide<Option<&MessageMeta>>,
    policy: &Policy,
    out: &mut Vec<Action>,
) {
    match (found.far, found.near) {
        (Some(far), Some(near)) => plan_flags(pair, PerSide::new(far, near), policy, out),
        (None, None) => out.push(Action::Unpair {
            keys: pair.keys.clone(),
        }),
        (Some(kept), None) => plan_one_sided(pair, Side::Far, kept, policy, out),
        (None, Some(kept)) => plan_one_sided(pair, Side::Near, kept, policy, out),
    }
}

/// Both sides still have the message: merge the flags.
fn plan_flags(pair: &Pair, now: PerSide<&MessageMeta>, policy: &Policy, out: &mut Vec<Action>) {
    // Unchanged on both sides (most pairs): merging changes nothing.
    if now.far.flags == pair.flags && now.near.flags == pair.flags {
        return;
    }
    let targets = flag_targets(&pair.flags, now.map(|_, m| &m.flags), policy);
    for side in Side::BOTH {
        let (add, remove) = flags::delta(&now[side].flags, &targets[side]);
        if !add.is_empty() || !remove.is_empty() {
            out.push(Action::SetFlags {
                side,
                key: now[side].key.clone(),
                add,
                remove,
            });
        }
    }
    // The new base is what the side that receives nothing keeps (one-way),
    // or the agreed flags (two-way, where both targets are equal).
    let base = if policy.flow_into.far {
        targets.near
    } else {
        targets.far
    };
    if base != pair.flags {
        out.push(Action::Pair {
            keys: pair.keys.clone(),
            flags: base,
        });
    }
}

/// The flags each side should end with: a side takes the other side's
/// changes only where changes may flow into it.
fn flag_targets(base: &Flags, now: PerSide<&Flags>, policy: &Policy) -> PerSide<Flags> {
    let merged = flags::merge(base, now);
    PerSide::from_fn(|side| {
        if policy.flow_into[side] {
            merged.clone()
        } else {
            now[side].clone()
        }
    })
}

/// The message is gone from `kept_side.other()` and still on `kept_side`.
fn plan_one_sided(
    pair: &Pair,
    kept_side: Side,
    kept: &MessageMeta,
    policy: &Policy,
    out: &mut Vec<Action>,
) {
    let gone_side = kept_side.other();
    if !policy.flow_into[kept_side] {
        // Deletions may not flow there; keep the pair so the message is
        // not copied back either.
        return;
    }
    if changed_since(&pair.flags, &kept.flags) && policy.flow_into[gone_side] {
        out.push(Action::Copy {
            from: kept_side,
            key: kept.key.clone(),
            flags: kept.flags.clone(),
            replaces: Some(Box::new(pair.keys.clone())),
        });
        return;
    }
    let key = kept.key.clone();
    if policy.expunge[kept_side] {
        out.push(Action::Remove {
            side: kept_side,
            key,
        });
    } else if !kept.flags.contains(&Flag::Deleted) {
        out.push(Action::MarkDeleted {
            side: kept_side,
            key,
        });
    }
}

/// Whether a message changed since the last sync, as "delete against
/// change" sees it: gaining `\Deleted` alone is no change (it agrees with
/// the deletion; an interrupted removal leaves exactly that behind), while
/// losing it is (someone restored the message).
fn changed_since(base: &Flags, now: &Flags) -> bool {
    if now == base {
        return false;
    }
    let mut marked = base.clone();
    marked.insert(Flag::Deleted);
    *now != marked
}

/// Messages in no pair: re-pair equal contents, copy the rest.
fn plan_unpaired(unpaired: PerSide<Vec<&MessageMeta>>, policy: &Policy, out: &mut Vec<Action>) {
    let mut matched: PerSide<BTreeSet<&MessageKey>> = PerSide::default();
    let index = ContentIndex::new(&unpaired.near);
    for far in &unpaired.far {
        let partner = index
            .candidates(far)
            .into_iter()
            .map(|i| unpaired.near[i])
            .filter(|near| !matched.near.contains(&near.key))
            .find(|near| far.same_content(near));
        if let Some(near) = partner {
            matched.far.insert(&far.key);
            matched.near.insert(&near.key);
            plan_adoption(PerSide::new(*far, near), out);
        }
    }
    let copies: usize = Side::BOTH
        .into_iter()
        .filter(|side| policy.flow_into[side.other()])
        .map(|side| unpaired[side].len() - matched[side].len())
        .sum();
    out.reserve_exact(copies);
    for side in Side::BOTH {
        for message in unpaired[side]
            .iter()
            .filter(|m| !matched[side].contains(&m.key))
        {
            if policy.flow_into[side.other()] {
                plan_copy(side, message, policy, out);
            }
        }
    }
}

/// Messages by fingerprint and by Message-ID and size, to find those that
/// may have the same content as another without comparing every pair.
struct ContentIndex<'a> {
    by_fingerprint: HashMap<ferry_core::Fingerprint, Vec<usize>>,
    by_id: HashMap<(&'a str, u64), Vec<usize>>,
}

impl<'a> ContentIndex<'a> {
    fn new(messages: &[&'a MessageMeta]) -> ContentIndex<'a> {
        let mut index = ContentIndex {
            by_fingerprint: HashMap::new(),
            by_id: HashMap::new(),
        };
        for (i, m) in messages.iter().enumerate() {
            if let Some(&fp) = m.fingerprint.as_deref() {
                index.by_fingerprint.entry(fp).or_default().push(i);
            }
            if let (Some(id), Some(size)) = (&m.message_id, m.size) {
                index.by_id.entry((&**id, size)).or_default().push(i);
            }
        }
        index
    }

    /// The positions that may hold `message`'s content, in order.
    fn candidates(&self, message: &MessageMeta) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        if let Some(found) = message
            .fingerprint
            .as_deref()
            .and_then(|fp| self.by_fingerprint.get(fp))
        {
            out.extend(found);
        }
        if let (Some(id), Some(size)) = (&message.message_id, message.size) {
            out.extend(self.by_id.get(&(&**id, size)).into_iter().flatten());
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Two unpaired messages with the same content become a pair; with no
/// last synced flags, each side keeps every flag either side has.
fn plan_adoption(messages: PerSide<&MessageMeta>, out: &mut Vec<Action>) {
    let union: Flags = messages
        .far
        .flags
        .iter()
        .chain(messages.near.flags.iter())
        .cloned()
        .collect();
    for side in Side::BOTH {
        let (add, remove) = flags::delta(&messages[side].flags, &union);
        if !add.is_empty() {
            out.push(Action::SetFlags {
                side,
                key: messages[side].key.clone(),
                add,
                remove,
            });
        }
    }
    out.push(Action::Pair {
        keys: messages.map(|_, m| m.key.clone()),
        flags: union,
    });
}

fn plan_copy(from: Side, message: &MessageMeta, policy: &Policy, out: &mut Vec<Action>) {
    let too_large =
        matches!((policy.max_size, message.size), (Some(max), Some(size)) if size > max);
    let reason = if too_large {
        Some(SkipReason::TooLarge)
    } else if message.flags.contains(&Flag::Deleted) {
        Some(SkipReason::MarkedDeleted)
    } else {
        None
    };
    let key = message.key.clone();
    out.push(match reason {
        Some(reason) => Action::Skip {
            side: from,
            key,
            reason,
        },
        None => Action::Copy {
            from,
            key,
            flags: message.flags.clone(),
            replaces: None,
        },
    });
}

/// Drops a side's removals when they exceed the guard's thresholds.
pub(crate) fn apply_guard(
    actions: &mut Vec<Action>,
    totals: PerSide<usize>,
    policy: &Policy,
) -> Vec<Held> {
    if policy.allow_mass_delete {
        return Vec::new();
    }
    let mut held = Vec::new();
    for side in Side::BOTH {
        let is_removal = |a: &Action| matches!(a, Action::Remove { side: s, .. } | Action::MarkDeleted { side: s, .. } if *s == side);
        let removals = actions.iter().filter(|a| is_removal(a)).count();
        let total = totals[side];
        if removals > GUARD_MIN && removals as f64 > total as f64 * GUARD_SHARE {
            actions.retain(|a| !is_removal(a));
            held.push(Held {
                side,
                removals,
                total,
            });
        }
    }
    held
}

#[cfg(test)]
mod tests;
