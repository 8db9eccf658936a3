//! Listing a folder from what changed since the last sync
//! ([`Store::snapshot_since`](ferry_core::store::Store::snapshot_since)),
//! instead of every message's flags, size and Message-ID again.
//!
//! Which messages changed, by what the server offers:
//!
//! - QRESYNC (RFC 7162): `SELECT ... (QRESYNC (validity modseq))` reports
//!   the messages changed since (FETCH), in the same round trip;
//! - CONDSTORE: `UID FETCH 1:<n> (UID FLAGS) (CHANGEDSINCE modseq)`;
//! - neither: the flags of every message (`UID FETCH 1:<n> (UID FLAGS)`),
//!   still without sizes and Message-ID headers.
//!
//! Which messages are still there is always asked (`UID SEARCH UID 1:<n>`,
//! UIDs only, pipelined behind the SELECT), not taken from VANISHED: VANISHED only reports what was
//! expunged since the saved mod-sequence, and a pair the planner keeps after
//! its server message went (marked deleted on the other side) must be seen
//! as gone on every run, as a full listing sees it. No known-UID set is sent
//! with QRESYNC, so that a change to an older message the state does not
//! know (one skipped before, then undeleted) is reported too.
//!
//! Messages from the last UIDNEXT on, and any changed older message the
//! state does not know, are listed in full, as in
//! [`ImapStore::list_messages`]. Another UIDVALIDITY, or a mailbox without
//! mod-sequences where they were relied on, is a full listing.

use super::folders::{message_meta, snapshot_items};
use super::{ImapStore, ImapStoreError, Result, UIDS_PER_COMMAND, uid_key};
use ferry_core::store::{Since, Snapshot};
use ferry_core::{Flags, MessageKey, MessageMeta};
use ferry_imap::proto::command::uid_set;
use ferry_imap::proto::response::Fetch;
use ferry_imap::{SelectOptions, Selected};
use std::collections::{BTreeMap, HashSet};

/// What the server said of the messages below the old UIDNEXT.
struct Delta {
    /// FETCH responses of changed messages.
    changed: Vec<Fetch>,
    /// The UIDs still there.
    present: HashSet<u32>,
}

impl ImapStore {
    /// [`Store::snapshot_since`](ferry_core::store::Store::snapshot_since).
    pub(super) fn list_changes(&mut self, folder: &str, since: &Since) -> Result<Snapshot> {
        let (Some(validity), Some(uid_next)) = (since.identity.validity, since.markers.uid_next)
        else {
            return self.list_messages(folder);
        };
        let wire = self.wire(folder)?;
        let mod_seq = since.markers.mod_seq.filter(|&m| m > 0);
        let qresync = mod_seq.filter(|_| self.session.enabled().iter().any(|e| e == "QRESYNC"));
        let options = SelectOptions {
            condstore: true,
            qresync: qresync.map(|m| (validity.get(), m, None)),
            ..SelectOptions::default()
        };
        // Which old messages are still there is asked in the same round
        // trip as the SELECT.
        let (mut selected, present) = match uid_next > 1 {
            true => self
                .session
                .select_then_search(&wire, &options, &format!("UID 1:{}", uid_next - 1))
                .map(|(selected, hits)| (selected, hits.into_iter().collect())),
            false => self
                .session
                .select(&wire, &options)
                .map(|s| (s, HashSet::new())),
        }
        .map_err(|e| ImapStoreError::folder(folder, e))?;
        let tracked = !selected.no_mod_seq && selected.highest_mod_seq.is_some_and(|m| m > 0);
        if selected.uid_validity != Some(validity.get()) || (mod_seq.is_some() && !tracked) {
            return self.list_selected(folder, selected);
        }
        let changed = match (qresync, mod_seq) {
            (Some(_), _) => std::mem::take(&mut selected.changed),
            (None, Some(m)) if self.session.has_capability("CONDSTORE") => {
                self.old_flags(folder, uid_next, Some(m))?
            }
            _ => self.old_flags(folder, uid_next, None)?,
        };
        let (messages, unknown) = merge(since, uid_next, Delta { changed, present });
        // The same UIDNEXT: nothing arrived since.
        let mut listed = match selected.uid_next == Some(uid_next) {
            true => Vec::new(),
            false => self.fetch_full(folder, &format!("{uid_next}:*"), &selected)?,
        };
        listed.retain(|m| key_uid(&m.key).is_some_and(|uid| uid >= uid_next));
        for chunk in unknown.chunks(UIDS_PER_COMMAND) {
            listed.extend(self.fetch_full(folder, &uid_set(chunk), &selected)?);
        }
        Ok(self.snapshot_of(selected, messages.into_iter().chain(listed).collect()))
    }

    /// The flags of the messages below `uid_next`: those changed since
    /// `mod_seq` (CONDSTORE), or all of them.
    fn old_flags(
        &mut self,
        folder: &str,
        uid_next: u32,
        mod_seq: Option<u64>,
    ) -> Result<Vec<Fetch>> {
        let mut changed = Vec::new();
        if uid_next > 1 {
            let range = format!("1:{}", uid_next - 1);
            self.session
                .uid_fetch_each(&range, "UID FLAGS", mod_seq, &mut |f| changed.push(f))
                .map_err(|e| ImapStoreError::folder(folder, e))?;
        }
        Ok(changed)
    }

    /// Everything a full snapshot asks of the messages in `uids`.
    fn fetch_full(
        &mut self,
        folder: &str,
        uids: &str,
        selected: &Selected,
    ) -> Result<Vec<MessageMeta>> {
        let mut messages = Vec::new();
        if selected.exists == 0 {
            return Ok(messages);
        }
        let items = snapshot_items(self.session.has_capability("OBJECTID"));
        self.session
            .uid_fetch_each(uids, items, None, &mut |fetch| {
                messages.extend(message_meta(fetch));
            })
            .map_err(|e| ImapStoreError::folder(folder, e))?;
        Ok(messages)
    }
}

fn key_uid(key: &MessageKey) -> Option<u32> {
    match key {
        MessageKey::Uid(uid) => Some(uid.get()),
        MessageKey::Name(_) => None,
    }
}

/// The known messages below `uid_next` that are still there, with their
/// flags now; and the UIDs of changed messages the state does not know
/// (or whose FETCH lacked flags), which are fetched in full. Known
/// messages from `uid_next` on are left to the full listing of that range.
fn merge(since: &Since, uid_next: u32, delta: Delta) -> (Vec<MessageMeta>, Vec<u32>) {
    let mut known: BTreeMap<u32, Flags> = since
        .known
        .iter()
        .filter_map(|(key, flags)| Some((key_uid(key)?, flags.clone())))
        .filter(|(uid, _)| *uid < uid_next && delta.present.contains(uid))
        .collect();
    let mut unknown = Vec::new();
    for fetch in delta.changed {
        let Some(uid) = fetch
            .uid
            .filter(|uid| *uid < uid_next && delta.present.contains(uid))
        else {
            continue;
        };
        match (known.get_mut(&uid), fetch.flags.is_some()) {
            (Some(flags), true) => *flags = super::fetched_flags(&fetch),
            _ => {
                known.remove(&uid);
                unknown.push(uid);
            }
        }
    }
    unknown.sort_unstable();
    unknown.dedup();
    let messages = known
        .into_iter()
        .filter_map(|(uid, flags)| Some(MessageMeta::new(uid_key(uid)?, flags)))
        .collect();
    (messages, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::{Flag, UidValidity};

    fn since(known: &[(u32, &[Flag])]) -> Since {
        Since {
            identity: ferry_core::store::FolderIdentity {
                validity: UidValidity::new(7).ok(),
                mailbox_id: None,
            },
            markers: Default::default(),
            known: known
                .iter()
                .filter_map(|(uid, flags)| Some((uid_key(*uid)?, flags.iter().cloned().collect())))
                .collect(),
        }
    }

    fn fetch(uid: u32, flags: Option<&[&str]>) -> Fetch {
        Fetch {
            uid: Some(uid),
            flags: flags.map(|f| f.iter().map(|s| s.to_string()).collect()),
            ..Fetch::default()
        }
    }

    fn listed(messages: &[MessageMeta]) -> Vec<(u32, Flags)> {
        messages
            .iter()
            .filter_map(|m| Some((key_uid(&m.key)?, m.flags.clone())))
            .collect()
    }

    #[test]
    fn gone_ones_go_changed_update_the_rest_keep_their_flags() {
        let since = since(&[(1, &[Flag::Seen]), (2, &[]), (3, &[]), (9, &[])]);
        let delta = Delta {
            changed: vec![fetch(2, Some(&["\\Flagged"])), fetch(12, Some(&[]))],
            present: [1, 2, 9].into_iter().collect(),
        };
        let (messages, unknown) = merge(&since, 10, delta);
        assert_eq!(
            listed(&messages),
            [
                (1, [Flag::Seen].into_iter().collect()),
                (2, [Flag::Flagged].into_iter().collect()),
                (9, Flags::new()),
            ]
        );
        assert!(unknown.is_empty(), "{unknown:?}");
    }

    #[test]
    fn known_messages_not_present_are_gone_and_unknown_changes_are_fetched() {
        let since = since(&[(1, &[]), (2, &[]), (11, &[])]);
        let delta = Delta {
            changed: vec![fetch(5, Some(&["\\Seen"])), fetch(1, None)],
            present: [1, 5].into_iter().collect(),
        };
        let (messages, unknown) = merge(&since, 10, delta);
        // 2 is gone; 11 (from the old UIDNEXT on) is left to the full
        // listing; 1 changed without flags is listed in full; so is 5.
        assert_eq!(listed(&messages), []);
        assert_eq!(unknown, [1, 5]);
    }
}
