//! The account plan: every folder's diff, then one pass across folders that
//! turns "vanished here" plus "appeared there" into moves.
//!
//! A message moved on one side shows up in the per-folder diffs as a
//! deletion to propagate in the source folder and a new message to copy in
//! the target folder. Copying would transfer the bytes again and lose the
//! server's identity of the message; the pass below pairs the two and
//! replaces them with one [`Move`] on the other side (IMAP `UID MOVE`, a
//! Maildir rename). Within one folder the same match is the message under
//! a new key on one side (renumbered, or its file rewritten under a new
//! name): the pair is re-keyed, nothing is copied or removed. Two are the same message when the vanished key and the
//! new key are the same Maildir name (mutt, notmuch and afew keep it), else
//! when the server says so (the same RFC 8474 EMAILID, where offered) or
//! the content provably matches (fingerprint, or Message-ID and size).
//! A move on one side with a flag change on the other is still a move, and
//! the flags merge. Moves do not count towards the mass-delete guard.
//!
//! A large account need not be held whole for this: [`FolderDiff`] is one
//! folder's diff, and [`FolderDiff::referenced`] says which of its messages
//! and pairs the diff (and so the move pass and the executor) needs; the
//! caller may drop the rest before diffing the next folder, and then plan
//! with [`plan_account_from`] on what it kept. The plan is the same.

use crate::flags;
use crate::folder::{self, Action, FolderPlan, Pair, Policy};
use ferry_core::{Fingerprint, Flags, MessageKey, MessageMeta, PerSide, Side};
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One folder's inputs.
#[derive(Debug, Clone, Copy)]
pub struct FolderState<'a> {
    /// The folder's name (the same on both sides, after mapping).
    pub name: &'a str,
    /// Both sides' snapshots.
    pub now: PerSide<&'a [MessageMeta]>,
    /// The pairs of the last sync.
    pub pairs: &'a [Pair],
}

/// A message to move from one folder to another on one side.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Move {
    /// The side whose store moves the message (the other side already did).
    pub side: Side,
    /// The folder it is in.
    pub from_folder: String,
    /// Its key there.
    pub key: MessageKey,
    /// The folder it goes to.
    pub to_folder: String,
    /// Its partner's key in the target folder, on the other side.
    pub partner: MessageKey,
    /// The pair it leaves in the source folder.
    pub old_pair: PerSide<MessageKey>,
    /// The flags both sides should end with.
    pub flags: Flags,
}

/// The plan of a whole account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPlan {
    /// Each folder's plan, by name.
    pub folders: BTreeMap<String, FolderPlan>,
    /// Moves between folders, sorted.
    pub moves: Vec<Move>,
}

/// A message that left a folder on one side and stays on the other.
struct Departure {
    folder: usize,
    action: usize,
    stays_on: Side,
    key: MessageKey,
    vanished_key: MessageKey,
    pair: Pair,
    flags: Flags,
}

/// A message new in a folder on one side.
struct Arrival<'a> {
    folder: usize,
    action: usize,
    side: Side,
    meta: &'a MessageMeta,
}

/// One folder's diff, before moves are found and the guard applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderDiff {
    /// The folder's actions.
    pub actions: Vec<Action>,
    /// How many messages each side listed (the guard's measure).
    pub listed: PerSide<usize>,
}

impl FolderDiff {
    /// Diffs one folder.
    pub fn new(folder: &FolderState<'_>, policy: &Policy) -> FolderDiff {
        FolderDiff {
            actions: folder::diff_folder(folder.now, folder.pairs, policy),
            listed: folder.now.map(|_, list| list.len()),
        }
    }

    /// The keys on each side that the actions name, with both keys of
    /// every pair among `pairs` that has one of them: the messages and
    /// pairs [`plan_account_from`] and the executor need. A message or
    /// pair not named is unchanged on both sides.
    pub fn referenced(&self, pairs: &[Pair]) -> PerSide<HashSet<MessageKey>> {
        let mut keys: PerSide<HashSet<MessageKey>> = PerSide::default();
        for action in &self.actions {
            for (side, key) in named_keys(action) {
                keys[side].insert(key.clone());
            }
        }
        for pair in pairs {
            if Side::BOTH
                .into_iter()
                .any(|s| keys[s].contains(&pair.keys[s]))
            {
                for side in Side::BOTH {
                    keys[side].insert(pair.keys[side].clone());
                }
            }
        }
        keys
    }
}

/// Both keys of a pair, with their sides.
fn both(keys: &PerSide<MessageKey>) -> [(Side, &MessageKey); 2] {
    Side::BOTH.map(|s| (s, &keys[s]))
}

/// The (side, key) an action names.
fn named_keys(action: &Action) -> Vec<(Side, &MessageKey)> {
    match action {
        Action::Unpair { keys } | Action::Pair { keys, .. } => both(keys).to_vec(),
        Action::Copy {
            from,
            key,
            replaces,
            ..
        } => {
            let mut named = vec![(*from, key)];
            named.extend(replaces.iter().flat_map(|keys| both(keys)));
            named
        }
        Action::SetFlags { side, key, .. }
        | Action::Remove { side, key }
        | Action::MarkDeleted { side, key }
        | Action::Skip { side, key, .. } => vec![(*side, key)],
    }
}

/// Plans every folder, then pairs departures with arrivals into moves.
pub fn plan_account(folders: &[FolderState<'_>], policy: &Policy) -> AccountPlan {
    let diffs = folders.iter().map(|f| FolderDiff::new(f, policy)).collect();
    plan_account_from(folders, diffs, policy)
}

/// [`plan_account`] from the folders' diffs, made beforehand; `folders`
/// need hold only what each diff [references](FolderDiff::referenced).
pub fn plan_account_from(
    folders: &[FolderState<'_>],
    diffs: Vec<FolderDiff>,
    policy: &Policy,
) -> AccountPlan {
    let listed: Vec<PerSide<usize>> = diffs.iter().map(|d| d.listed).collect();
    let mut diffs: Vec<Vec<Action>> = diffs.into_iter().map(|d| d.actions).collect();
    let metas = Metas::new(folders);
    let departures = find_departures(folders, &metas, &diffs);
    let keeps_keywords = policy.keeps_keywords;
    // Only arrivals that may match a departure are indexed: a first sync
    // has tens of thousands of arrivals and no departure.
    let sought = Sought::new(&departures);
    let arrivals = find_arrivals(&metas, &diffs, &sought);
    let index = ArrivalIndex::new(&arrivals);
    let mut moves = Vec::new();
    let mut rekeyed = Vec::new();
    // (folder, action) of the actions a move or a re-key replaces.
    let mut replaced = HashSet::new();
    let mut taken = vec![false; arrivals.len()];
    for departure in departures {
        let vanished_on = departure.stays_on.other();
        let found = index.candidates(&departure).into_iter().find(|&i| {
            let a = &arrivals[i];
            !taken[i] && a.side == vanished_on && same_message(&departure, a.meta)
        });
        if let Some(i) = found {
            let arrival = &arrivals[i];
            taken[i] = true;
            replaced.insert((departure.folder, departure.action));
            replaced.insert((arrival.folder, arrival.action));
            match arrival.folder == departure.folder {
                true => rekeyed.push((arrival.folder, rekey(&departure, arrival, keeps_keywords))),
                false => moves.push(make_move(folders, &departure, arrival, keeps_keywords)),
            }
        }
    }
    drop_replaced(&mut diffs, &replaced);
    for (folder, actions) in rekeyed {
        diffs[folder].extend(actions);
    }
    moves.sort();
    AccountPlan {
        folders: finish_folders(folders, diffs, &listed, policy),
        moves,
    }
}

/// Each folder's snapshots by key, indexed on first use: a folder whose
/// diff has neither a departure nor a sought arrival is never indexed.
struct Metas<'a> {
    folders: &'a [FolderState<'a>],
    by_key: Vec<OnceCell<PerSide<HashMap<&'a MessageKey, &'a MessageMeta>>>>,
}

impl<'a> Metas<'a> {
    fn new(folders: &'a [FolderState<'a>]) -> Metas<'a> {
        Metas {
            folders,
            by_key: folders.iter().map(|_| OnceCell::new()).collect(),
        }
    }

    /// The message under `key` in folder `folder` on `side`.
    fn get(&self, folder: usize, side: Side, key: &MessageKey) -> Option<&'a MessageMeta> {
        let index = self.by_key[folder].get_or_init(|| {
            self.folders[folder]
                .now
                .map(|_, list| list.iter().map(|m| (&m.key, m)).collect())
        });
        index[side].get(key).copied()
    }
}

fn find_departures(
    folders: &[FolderState<'_>],
    metas: &Metas<'_>,
    diffs: &[Vec<Action>],
) -> Vec<Departure> {
    let mut out = Vec::new();
    for (f, actions) in diffs.iter().enumerate() {
        let mut pairs: Option<PerSide<HashMap<&MessageKey, &Pair>>> = None;
        for (i, action) in actions.iter().enumerate() {
            let (stays_on, key, flags) = match action {
                Action::Remove { side, key } | Action::MarkDeleted { side, key } => {
                    let flags = metas
                        .get(f, *side, key)
                        .map(|m| m.flags.clone())
                        .unwrap_or_default();
                    (*side, key.clone(), flags)
                }
                Action::Copy {
                    from,
                    key,
                    flags,
                    replaces: Some(_),
                } => (*from, key.clone(), flags.clone()),
                _ => continue,
            };
            // Indexed once per folder that has departures.
            let pairs = pairs.get_or_insert_with(|| {
                PerSide::from_fn(|side| {
                    folders[f]
                        .pairs
                        .iter()
                        .map(|p| (&p.keys[side], p))
                        .collect()
                })
            });
            let Some(pair) = pairs[stays_on].get(&key).copied() else {
                continue;
            };
            out.push(Departure {
                folder: f,
                action: i,
                stays_on,
                vanished_key: pair.keys[stays_on.other()].clone(),
                key,
                pair: pair.clone(),
                flags,
            });
        }
    }
    out
}

/// What the departures can be matched by (see [`ArrivalIndex::candidates`]):
/// an arrival that has none of it is no departure's message.
#[derive(Default)]
struct Sought<'d> {
    keys: HashSet<&'d MessageKey>,
    fingerprints: HashSet<Fingerprint>,
    ids: HashSet<(&'d str, u64)>,
    email_ids: HashSet<&'d str>,
}

impl<'d> Sought<'d> {
    fn new(departures: &'d [Departure]) -> Sought<'d> {
        let mut sought = Sought::default();
        for departure in departures {
            let content = &departure.pair.content;
            sought.keys.insert(&departure.vanished_key);
            sought.fingerprints.extend(content.fingerprint);
            if let (Some(id), Some(size)) = (&content.message_id, content.size) {
                sought.ids.insert((id, size));
            }
            sought.email_ids.extend(content.email_id.as_deref());
        }
        sought
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `meta` may be the message of one of the departures.
    fn may_match(&self, meta: &MessageMeta) -> bool {
        let by_id = match (&meta.message_id, meta.size) {
            (Some(id), Some(size)) => self.ids.contains(&(&**id, size)),
            _ => false,
        };
        self.keys.contains(&meta.key)
            || meta
                .fingerprint
                .as_deref()
                .is_some_and(|fp| self.fingerprints.contains(fp))
            || by_id
            || meta
                .email_id
                .as_deref()
                .is_some_and(|id| self.email_ids.contains(id))
    }
}

fn find_arrivals<'a>(
    metas: &Metas<'a>,
    diffs: &[Vec<Action>],
    sought: &Sought<'_>,
) -> Vec<Arrival<'a>> {
    let mut out = Vec::new();
    if sought.is_empty() {
        return out;
    }
    for (f, actions) in diffs.iter().enumerate() {
        for (i, action) in actions.iter().enumerate() {
            if let Action::Copy {
                from,
                key,
                replaces: None,
                ..
            } = action
            {
                match metas.get(f, *from, key) {
                    Some(meta) if sought.may_match(meta) => out.push(Arrival {
                        folder: f,
                        action: i,
                        side: *from,
                        meta,
                    }),
                    _ => {}
                }
            }
        }
    }
    out
}

/// Arrivals by what can make them the same message as a departure: the
/// key (a Maildir name), the fingerprint, the Message-ID and size, the
/// server's EMAILID. The
/// candidates are then checked with [`same_message`]; without the index,
/// matching would compare every departure with every arrival.
struct ArrivalIndex<'a> {
    by_key: HashMap<&'a MessageKey, Vec<usize>>,
    by_fingerprint: HashMap<Fingerprint, Vec<usize>>,
    by_id: HashMap<(&'a str, u64), Vec<usize>>,
    by_email_id: HashMap<&'a str, Vec<usize>>,
}

impl<'a> ArrivalIndex<'a> {
    fn new(arrivals: &[Arrival<'a>]) -> ArrivalIndex<'a> {
        let mut index = ArrivalIndex {
            by_key: HashMap::new(),
            by_fingerprint: HashMap::new(),
            by_id: HashMap::new(),
            by_email_id: HashMap::new(),
        };
        for (i, a) in arrivals.iter().enumerate() {
            if let Some(id) = &a.meta.email_id {
                index.by_email_id.entry(id).or_default().push(i);
            }
            index.by_key.entry(&a.meta.key).or_default().push(i);
            if let Some(&fp) = a.meta.fingerprint.as_deref() {
                index.by_fingerprint.entry(fp).or_default().push(i);
            }
            if let (Some(id), Some(size)) = (&a.meta.message_id, a.meta.size) {
                index.by_id.entry((id, size)).or_default().push(i);
            }
        }
        index
    }

    /// The arrivals that may be `departure`'s message, in arrival order.
    fn candidates(&self, departure: &Departure) -> Vec<usize> {
        let content = &departure.pair.content;
        let mut out: Vec<usize> = Vec::new();
        let mut add = |found: Option<&Vec<usize>>| out.extend(found.into_iter().flatten());
        add(self.by_key.get(&departure.vanished_key));
        if let Some(fp) = content.fingerprint {
            add(self.by_fingerprint.get(&fp));
        }
        if let (Some(id), Some(size)) = (&content.message_id, content.size) {
            add(self.by_id.get(&(&**id, size)));
        }
        if let Some(id) = &content.email_id {
            add(self.by_email_id.get(&**id));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Whether `arrival` is the message that vanished in the departure's
/// folder: the same Maildir name (UIDs mean nothing across folders), else
/// provably the same content.
fn same_message(departure: &Departure, arrival: &MessageMeta) -> bool {
    let same_name =
        matches!(&arrival.key, MessageKey::Name(_)) && arrival.key == departure.vanished_key;
    same_name || departure.pair.content.matches(arrival)
}

fn make_move(
    folders: &[FolderState<'_>],
    departure: &Departure,
    arrival: &Arrival<'_>,
    keeps_keywords: PerSide<bool>,
) -> Move {
    let (_, merged) = flags_now_and_merged(departure, arrival, keeps_keywords);
    Move {
        side: departure.stays_on,
        from_folder: folders[departure.folder].name.to_string(),
        key: departure.key.clone(),
        to_folder: folders[arrival.folder].name.to_string(),
        partner: arrival.meta.key.clone(),
        old_pair: departure.pair.keys.clone(),
        flags: merged,
    }
}

/// Each side's flags now (a side that cannot show keywords has the
/// pair's), and the flags both should end with.
fn flags_now_and_merged(
    departure: &Departure,
    arrival: &Arrival<'_>,
    keeps_keywords: PerSide<bool>,
) -> (PerSide<Flags>, Flags) {
    let base = &departure.pair.flags;
    let now = PerSide::from_fn(|s| {
        let mut flags = if s == departure.stays_on {
            departure.flags.clone()
        } else {
            arrival.meta.flags.clone()
        };
        if !keeps_keywords[s] {
            for keyword in base.iter().filter(|f| f.maildir_letter().is_none()) {
                flags.insert(keyword.clone());
            }
        }
        flags
    });
    let merged = flags::merge(base, now.as_ref());
    (now, merged)
}

/// The same message under a new key in the same folder, on the side where
/// its old key vanished (the server renumbered it, another client copied
/// and expunged it, a tool rewrote its file under a new name): the pair is
/// re-keyed and flags go where they differ; nothing is copied or removed.
fn rekey(
    departure: &Departure,
    arrival: &Arrival<'_>,
    keeps_keywords: PerSide<bool>,
) -> Vec<Action> {
    let (now, merged) = flags_now_and_merged(departure, arrival, keeps_keywords);
    let mut keys = departure.pair.keys.clone();
    keys[arrival.side] = arrival.meta.key.clone();
    let mut actions = vec![Action::Unpair {
        keys: departure.pair.keys.clone(),
    }];
    for side in Side::BOTH {
        let add: Flags = merged
            .iter()
            .filter(|f| !now[side].contains(f))
            .cloned()
            .collect();
        let remove: Flags = now[side]
            .iter()
            .filter(|f| !merged.contains(f))
            .cloned()
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            actions.push(Action::SetFlags {
                side,
                key: keys[side].clone(),
                add,
                remove,
            });
        }
    }
    actions.push(Action::Pair {
        keys,
        flags: merged,
    });
    actions
}

/// Drops the actions a move or a re-key replaced, in place.
fn drop_replaced(diffs: &mut [Vec<Action>], replaced: &HashSet<(usize, usize)>) {
    if replaced.is_empty() {
        return;
    }
    for (f, actions) in diffs.iter_mut().enumerate() {
        let mut i = 0;
        actions.retain(|_| {
            i += 1;
            !replaced.contains(&(f, i - 1))
        });
    }
}

fn finish_folders(
    folders: &[FolderState<'_>],
    diffs: Vec<Vec<Action>>,
    listed: &[PerSide<usize>],
    policy: &Policy,
) -> BTreeMap<String, FolderPlan> {
    folders
        .iter()
        .zip(diffs)
        .zip(listed)
        .map(|((state, mut actions), listed)| {
            let held = folder::apply_guard(&mut actions, *listed, policy);
            actions.sort();
            (state.name.to_string(), FolderPlan { actions, held })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::Content;
    use ferry_core::Uid;

    fn uid(n: u32) -> MessageKey {
        MessageKey::Uid(Uid::new(n).expect("non-zero"))
    }

    fn name(s: &str) -> MessageKey {
        MessageKey::Name(s.into())
    }

    fn meta(key: MessageKey, flags: &str, id: &str) -> MessageMeta {
        MessageMeta {
            key,
            flags: Flags::from_maildir_info(flags),
            size: Some(1234),
            message_id: Some(id.into()),
            fingerprint: None,
            email_id: None,
        }
    }

    /// The account plan, checked to be the same when planned from the
    /// diffs and only what they reference.
    fn plan(folders: &[FolderState<'_>]) -> AccountPlan {
        let policy = Policy::default();
        let full = plan_account(folders, &policy);
        let diffs: Vec<FolderDiff> = folders
            .iter()
            .map(|f| FolderDiff::new(f, &policy))
            .collect();
        let kept: Vec<(PerSide<Vec<MessageMeta>>, Vec<Pair>)> = folders
            .iter()
            .zip(&diffs)
            .map(|(f, d)| {
                let keys = d.referenced(f.pairs);
                let now = PerSide::from_fn(|s| {
                    let keep = |m: &&MessageMeta| keys[s].contains(&m.key);
                    f.now[s].iter().filter(keep).cloned().collect()
                });
                let pairs = f
                    .pairs
                    .iter()
                    .filter(|p| keys.far.contains(&p.keys.far))
                    .cloned()
                    .collect();
                (now, pairs)
            })
            .collect();
        let pruned: Vec<FolderState<'_>> = folders
            .iter()
            .zip(&kept)
            .map(|(f, (now, pairs))| FolderState {
                name: f.name,
                now: now.as_ref().map(|_, v| v.as_slice()),
                pairs,
            })
            .collect();
        assert_eq!(plan_account_from(&pruned, diffs, &policy), full);
        full
    }

    fn pair(far: MessageKey, near: MessageKey, flags: &str, id: &str) -> Pair {
        Pair {
            keys: PerSide::new(far, near),
            flags: Flags::from_maildir_info(flags),
            content: Content {
                message_id: Some(id.into()),
                size: Some(1234),
                fingerprint: None,
                email_id: None,
            },
        }
    }

    #[test]
    fn a_local_move_becomes_a_server_move() {
        let inbox_far = [meta(uid(1), "S", "<a>")];
        let inbox_pairs = [pair(uid(1), name("k1"), "S", "<a>")];
        let archive_near = [meta(name("k1"), "S", "<a>")];
        let folders = [
            FolderState {
                name: "INBOX",
                now: PerSide::new(&inbox_far, &[]),
                pairs: &inbox_pairs,
            },
            FolderState {
                name: "Archive",
                now: PerSide::new(&[], &archive_near),
                pairs: &[],
            },
        ];
        let plan = plan(&folders);
        assert!(
            plan.folders.values().all(|f| f.actions.is_empty()),
            "{plan:?}"
        );
        assert_eq!(
            plan.moves,
            [Move {
                side: Side::Far,
                from_folder: "INBOX".into(),
                key: uid(1),
                to_folder: "Archive".into(),
                partner: name("k1"),
                old_pair: PerSide::new(uid(1), name("k1")),
                flags: Flags::from_maildir_info("S"),
            }]
        );
    }

    #[test]
    fn a_server_move_is_recognised_by_emailid_without_a_message_id() {
        let inbox_near = [MessageMeta::new(name("k1"), Flags::new())];
        let mut inbox_pair = pair(uid(1), name("k1"), "", "");
        inbox_pair.content = Content {
            email_id: Some("M1".into()),
            ..Content::default()
        };
        let moved = |id: &str| MessageMeta {
            email_id: Some(id.into()),
            ..MessageMeta::new(uid(40), Flags::new())
        };
        for (archived, expected) in [(moved("M1"), 1), (moved("M2"), 0)] {
            let archive_far = [archived];
            let pairs = [inbox_pair.clone()];
            let folders = [
                FolderState {
                    name: "INBOX",
                    now: PerSide::new(&[], &inbox_near),
                    pairs: &pairs,
                },
                FolderState {
                    name: "Archive",
                    now: PerSide::new(&archive_far, &[]),
                    pairs: &[],
                },
            ];
            let plan = plan(&folders);
            assert_eq!(plan.moves.len(), expected, "{plan:?}");
        }
    }

    #[test]
    fn a_message_under_a_new_key_in_its_folder_is_re_keyed_not_copied() {
        // The server renumbered message <a> (UID 1 -> 40) and flagged it;
        // the local file k2 <b> was rewritten as k3 with the same content.
        let near = [meta(name("k1"), "S", "<a>"), meta(name("k3"), "", "<b>")];
        let far = [meta(uid(40), "FS", "<a>"), meta(uid(2), "", "<b>")];
        let pairs = [
            pair(uid(1), name("k1"), "S", "<a>"),
            pair(uid(2), name("k2"), "", "<b>"),
        ];
        let folders = [FolderState {
            name: "INBOX",
            now: PerSide::new(&far, &near),
            pairs: &pairs,
        }];
        let plan = plan(&folders);
        assert!(plan.moves.is_empty(), "{plan:?}");
        let actions = &plan.folders["INBOX"].actions;
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::Copy { .. } | Action::Remove { .. })),
            "{actions:#?}"
        );
        assert!(actions.contains(&Action::Pair {
            keys: PerSide::new(uid(40), name("k1")),
            flags: Flags::from_maildir_info("FS"),
        }));
        assert!(actions.contains(&Action::Pair {
            keys: PerSide::new(uid(2), name("k3")),
            flags: Flags::new(),
        }));
        assert!(actions.contains(&Action::SetFlags {
            side: Side::Near,
            key: name("k1"),
            add: Flags::from_maildir_info("F"),
            remove: Flags::new(),
        }));
        let unpaired = actions
            .iter()
            .filter(|a| matches!(a, Action::Unpair { .. }))
            .count();
        assert_eq!(unpaired, 2, "{actions:#?}");
    }

    #[test]
    fn a_server_move_becomes_a_rename_by_message_id_and_size() {
        let inbox_near = [meta(name("k1"), "", "<a>")];
        let inbox_pairs = [pair(uid(1), name("k1"), "", "<a>")];
        let archive_far = [meta(uid(40), "F", "<a>")];
        let folders = [
            FolderState {
                name: "INBOX",
                now: PerSide::new(&[], &inbox_near),
                pairs: &inbox_pairs,
            },
            FolderState {
                name: "Archive",
                now: PerSide::new(&archive_far, &[]),
                pairs: &[],
            },
        ];
        let plan = plan(&folders);
        assert_eq!(plan.moves.len(), 1, "{plan:?}");
        let m = &plan.moves[0];
        assert_eq!(
            (m.side, &m.key, &m.partner),
            (Side::Near, &name("k1"), &uid(40))
        );
        assert_eq!(
            m.flags,
            Flags::from_maildir_info("F"),
            "the flag set on the server comes along"
        );
    }

    #[test]
    fn moves_do_not_trip_the_guard_and_unmatched_deletions_stay() {
        let far: Vec<MessageMeta> = (1..=30)
            .map(|n| meta(uid(n), "", &format!("<{n}>")))
            .collect();
        let pairs: Vec<Pair> = (1..=30)
            .map(|n| pair(uid(n), name(&format!("k{n}")), "", &format!("<{n}>")))
            .collect();
        let moved: Vec<MessageMeta> = (1..=29)
            .map(|n| meta(name(&format!("k{n}")), "", &format!("<{n}>")))
            .collect();
        let folders = [
            FolderState {
                name: "INBOX",
                now: PerSide::new(&far, &[]),
                pairs: &pairs,
            },
            FolderState {
                name: "Old",
                now: PerSide::new(&[], &moved),
                pairs: &[],
            },
        ];
        let plan = plan(&folders);
        assert_eq!(plan.moves.len(), 29);
        assert_eq!(
            plan.folders["INBOX"].actions,
            [Action::Remove {
                side: Side::Far,
                key: uid(30)
            }]
        );
        assert!(plan.folders["INBOX"].held.is_empty());
    }

    #[test]
    fn a_move_out_of_the_synced_folders_is_a_deletion() {
        let inbox_far = [meta(uid(1), "", "<a>")];
        let inbox_pairs = [pair(uid(1), name("k1"), "", "<a>")];
        let folders = [FolderState {
            name: "INBOX",
            now: PerSide::new(&inbox_far, &[]),
            pairs: &inbox_pairs,
        }];
        let plan = plan(&folders);
        assert!(plan.moves.is_empty());
        assert_eq!(
            plan.folders["INBOX"].actions,
            [Action::Remove {
                side: Side::Far,
                key: uid(1)
            }]
        );
    }

    #[test]
    fn uids_are_not_compared_across_folders() {
        // UID 5 vanished from INBOX on the server and another UID 5 is new
        // in Archive: different messages, no move.
        let inbox_near = [meta(name("k1"), "", "<a>")];
        let inbox_pairs = [pair(uid(5), name("k1"), "", "<a>")];
        let archive_far = [meta(uid(5), "", "<b>")];
        let folders = [
            FolderState {
                name: "INBOX",
                now: PerSide::new(&[], &inbox_near),
                pairs: &inbox_pairs,
            },
            FolderState {
                name: "Archive",
                now: PerSide::new(&archive_far, &[]),
                pairs: &[],
            },
        ];
        assert!(plan(&folders).moves.is_empty());
    }
}
