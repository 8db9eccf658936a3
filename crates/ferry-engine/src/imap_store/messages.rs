//! Flags, removal and moves of messages in the selected folder.
//!
//! Flag changes are grouped by identical (add, remove) sets and sent as
//! `UID STORE +FLAGS.SILENT` / `-FLAGS.SILENT`, all pipelined. A STORE of
//! a message another client expunged meanwhile succeeds doing nothing; the
//! expunge the server reports with it, or (for a folder just selected) a
//! UID SEARCH pipelined behind the stores, makes that change fail, so it
//! is not taken as made. Removal marks
//! `\Deleted` and, with UIDPLUS, expunges exactly those UIDs; without it the
//! mark stays (never EXPUNGE or CLOSE, which would also destroy what other
//! clients marked). A move is `UID MOVE`, else `UID COPY` + `\Deleted` (+
//! `UID EXPUNGE` with UIDPLUS); new keys come from COPYUID.

use super::{
    ImapStore, ImapStoreError, Refusal, Result, UIDS_PER_COMMAND, imap_flags, split_keys, uid_key,
    uid_of,
};
use ferry_core::store::FlagChange;
use ferry_core::{Flags, MessageKey};
use ferry_imap::FlagUpdate;
use ferry_imap::proto::command::uid_set;
use ferry_imap::proto::response::ResponseCode;
use ferry_imap::proto::response::Untagged;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

type Outcome<T> = Result<T, ImapStoreError>;

impl ImapStore {
    /// [`Store::set_flags`](ferry_core::store::Store::set_flags).
    pub(super) fn change_flags(
        &mut self,
        folder: &str,
        changes: &[FlagChange],
    ) -> Result<Vec<Outcome<()>>> {
        let mut results: Vec<Outcome<()>> = changes
            .iter()
            .map(|change| match &change.key {
                MessageKey::Uid(_) => Ok(()),
                key => Err(ImapStoreError::NotAUid { key: key.clone() }),
            })
            .collect();
        let (members, updates) = flag_updates(changes);
        if updates.is_empty() {
            return Ok(results);
        }
        // A folder selected anew reports nothing of what was expunged
        // before: which messages are there is asked behind the stores.
        let fresh = self.session.selected() != Some(self.wire(folder)?.as_str());
        self.open(folder)?;
        // Expunges reported before are not about this STORE.
        drop(self.session.take_unsolicited());
        let asked: Vec<u32> = match fresh {
            true => (changes.iter().map(|c| uid_of(&c.key)))
                .filter(|&uid| uid > 0)
                .collect::<BTreeSet<u32>>()
                .into_iter()
                .collect(),
            false => Vec::new(),
        };
        let (outcomes, present) = self
            .session
            .uid_store_many_then_search(&updates, &asked)
            .map_err(ImapStoreError::Session)?;
        ferry_core::crashpoint::step("imap store flags");
        let present: HashSet<u32> = present
            .map_err(|e| ImapStoreError::folder(folder, e))?
            .into_iter()
            .collect();
        for (indices, outcome) in members.into_iter().zip(outcomes) {
            let Err(e) = outcome else { continue };
            let refusal = Refusal::from_imap(e).map_err(ImapStoreError::Session)?;
            for i in indices {
                let key = Some(&changes[i].key);
                let error = ImapStoreError::message_refused(folder, key, refusal.clone());
                results[i] = Err(error);
            }
        }
        let mut gone = self.expunged_meanwhile(folder, changes)?;
        gone.extend(asked.iter().filter(|uid| !present.contains(uid)));
        for (change, result) in changes.iter().zip(results.iter_mut()) {
            if result.is_ok() && gone.contains(&uid_of(&change.key)) {
                *result = Err(ImapStoreError::Vanished {
                    folder: folder.to_string(),
                    key: change.key.clone(),
                });
            }
        }
        Ok(results)
    }

    /// Which messages of `changes` another client expunged: a STORE of such
    /// a message succeeds doing nothing, and the server reports the expunge
    /// with it. VANISHED (QRESYNC) names the UIDs; an EXPUNGE names a
    /// sequence number, so then the messages are looked for (one more
    /// round trip, only then).
    fn expunged_meanwhile(&mut self, folder: &str, changes: &[FlagChange]) -> Result<HashSet<u32>> {
        let uids: BTreeSet<u32> = changes.iter().map(|c| uid_of(&c.key)).collect();
        let mut vanished = Vec::new();
        let mut renumbered = false;
        for response in self.session.take_unsolicited() {
            match response {
                Untagged::Vanished { uids, .. } => vanished.extend(uids),
                Untagged::Expunge(_) => renumbered = true,
                _ => {}
            }
        }
        // Ranges are looked into, not expanded: a server may name huge ones.
        let mut gone: HashSet<u32> = (uids.iter().copied())
            .filter(|uid| vanished.iter().any(|range| range.contains(uid)))
            .collect();
        if renumbered {
            let uids: Vec<u32> = uids.into_iter().collect();
            let mut present = HashSet::with_capacity(uids.len());
            for chunk in uids.chunks(UIDS_PER_COMMAND) {
                let hits = (self.session)
                    .uid_search(&format!("UID {}", uid_set(chunk)))
                    .map_err(|e| ImapStoreError::folder(folder, e))?;
                present.extend(hits);
            }
            gone.extend(uids.into_iter().filter(|uid| !present.contains(uid)));
        }
        Ok(gone)
    }

    /// [`Store::remove`](ferry_core::store::Store::remove).
    pub(super) fn delete_messages(
        &mut self,
        folder: &str,
        keys: &[MessageKey],
    ) -> Result<Vec<Outcome<()>>> {
        let (uids, _) = split_keys(keys);
        if !uids.is_empty() {
            self.open(folder)?;
        }
        let outcome = self.mark_deleted(&uids).and_then(|()| self.expunge(&uids));
        let refusal = match outcome {
            Ok(()) => None,
            Err(e) => Some(Refusal::from_imap(e).map_err(ImapStoreError::Session)?),
        };
        Ok(keys
            .iter()
            .map(|key| match (key, &refusal) {
                (MessageKey::Name(_), _) => Err(ImapStoreError::NotAUid { key: key.clone() }),
                (_, Some(r)) => Err(ImapStoreError::message_refused(
                    folder,
                    Some(key),
                    r.clone(),
                )),
                (_, None) => Ok(()),
            })
            .collect())
    }

    fn mark_deleted(&mut self, uids: &[u32]) -> ferry_imap::Result<()> {
        let update = FlagUpdate {
            uids: uids.to_vec(),
            add: true,
            flags: vec!["\\Deleted".into()],
            unchanged_since: None,
        };
        let mut outcomes = self.session.uid_store_many(&[update])?;
        ferry_core::crashpoint::step("imap store deleted");
        outcomes.pop().transpose().map(drop)
    }

    /// UID EXPUNGE of exactly `uids` with UIDPLUS; without it, nothing.
    fn expunge(&mut self, uids: &[u32]) -> ferry_imap::Result<()> {
        if uids.is_empty() || !self.session.has_capability("UIDPLUS") {
            return Ok(());
        }
        self.session.uid_expunge(uids)?;
        ferry_core::crashpoint::step("imap expunge");
        Ok(())
    }

    /// [`Store::move_messages`](ferry_core::store::Store::move_messages).
    pub(super) fn relocate(
        &mut self,
        from: &str,
        keys: &[MessageKey],
        to: &str,
    ) -> Result<Vec<Outcome<Option<MessageKey>>>> {
        let target = self.wire(to)?;
        let (uids, _) = split_keys(keys);
        if !uids.is_empty() {
            self.open(from)?;
        }
        let mut moved: HashMap<u32, Moved> = HashMap::with_capacity(uids.len());
        for chunk in uids.chunks(UIDS_PER_COMMAND) {
            match self.move_chunk(chunk, &target) {
                Ok(copied) => {
                    let new_uid = |uid: &u32| copied.get(uid).copied();
                    moved.extend(chunk.iter().map(|uid| (*uid, Ok(new_uid(uid)))));
                }
                Err(e) => {
                    let refusal = Refusal::from_imap(e).map_err(ImapStoreError::Session)?;
                    moved.extend(chunk.iter().map(|uid| (*uid, Err(refusal.clone()))));
                }
            }
        }
        Ok(keys
            .iter()
            .map(|key| moved_result(from, to, key, &moved))
            .collect())
    }

    /// Moves `uids` to `target`; returns old UID -> new UID where reported.
    /// COPYUID is trusted only from a server that advertises UIDPLUS.
    /// Without MOVE: COPY, then `\Deleted`, then UID EXPUNGE with UIDPLUS;
    /// a refused expunge leaves the originals `\Deleted`, as on a server
    /// without UIDPLUS, and the move stands (the copies exist).
    fn move_chunk(&mut self, uids: &[u32], target: &str) -> ferry_imap::Result<HashMap<u32, u32>> {
        let copied = if self.session.has_capability("MOVE") {
            let moved = self.session.uid_move(uids, target)?;
            ferry_core::crashpoint::step("imap move");
            moved
        } else {
            let copied = self.session.uid_copy(uids, target)?;
            ferry_core::crashpoint::step("imap copy");
            self.mark_deleted(uids)?;
            match self.expunge(uids) {
                Err(e) if e.session_usable() => tracing::warn!("{e}; the originals stay \\Deleted"),
                other => other?,
            }
            copied
        };
        let trusted = self.session.has_capability("UIDPLUS");
        Ok(copy_map(copied.filter(|_| trusted)))
    }
}

/// What became of one message of a move: its new UID where reported, or
/// the refusal of its command.
type Moved = Result<Option<u32>, Refusal>;

fn moved_result(
    from: &str,
    to: &str,
    key: &MessageKey,
    moved: &HashMap<u32, Moved>,
) -> Outcome<Option<MessageKey>> {
    let MessageKey::Uid(uid) = key else {
        return Err(ImapStoreError::NotAUid { key: key.clone() });
    };
    match moved.get(&uid.get()) {
        Some(Ok(new_uid)) => Ok(new_uid.and_then(uid_key)),
        Some(Err(refusal)) => {
            let refused = ImapStoreError::message_refused(from, Some(key), refusal.clone());
            // A missing target is the target folder's problem.
            Err(match refused {
                ImapStoreError::NoSuchFolder { refusal, .. } => ImapStoreError::NoSuchFolder {
                    folder: to.to_string(),
                    refusal,
                },
                other => other,
            })
        }
        None => Ok(None),
    }
}

fn copy_map(code: Option<ResponseCode>) -> HashMap<u32, u32> {
    match code {
        Some(ResponseCode::CopyUid { from, to, .. }) => from.into_iter().zip(to).collect(),
        _ => HashMap::new(),
    }
}

/// The UID STOREs of `changes`: one per group of identical (add, remove)
/// sets and direction, each with the indices of the changes it carries.
fn flag_updates(changes: &[FlagChange]) -> (Vec<Vec<usize>>, Vec<FlagUpdate>) {
    let mut groups: BTreeMap<(&Flags, &Flags), Vec<usize>> = BTreeMap::new();
    for (i, change) in changes.iter().enumerate() {
        if let MessageKey::Uid(_) = change.key {
            groups
                .entry((&change.add, &change.remove))
                .or_default()
                .push(i);
        }
    }
    let mut members = Vec::new();
    let mut updates = Vec::new();
    for ((add, remove), indices) in groups {
        let uids: Vec<u32> = indices.iter().map(|&i| uid_of(&changes[i].key)).collect();
        for (flags, is_add) in [(add, true), (remove, false)] {
            if let Some(update) = flag_update(&uids, is_add, flags) {
                updates.push(update);
                members.push(indices.clone());
            }
        }
    }
    (members, updates)
}

/// One `+FLAGS.SILENT` or `-FLAGS.SILENT` for `uids`, if `flags` has
/// anything to send.
fn flag_update(uids: &[u32], add: bool, flags: &Flags) -> Option<FlagUpdate> {
    let names = imap_flags(flags);
    (!names.is_empty()).then(|| FlagUpdate {
        uids: uids.to_vec(),
        add,
        flags: names,
        unchanged_since: None,
    })
}
