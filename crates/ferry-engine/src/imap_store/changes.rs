//! Listing a folder from what changed since the last sync
//! ([`Store::snapshot_since`](ferry_core::store::Store::snapshot_since)),
//! instead of every message's flags, size and Message-ID again.
//!
//! Three ways, from the cheapest, by what the server offers:
//!
//! - QRESYNC (RFC 7162): one `SELECT ... (QRESYNC (validity modseq known))`
//!   reports the messages changed since (FETCH) and those expunged since
//!   (VANISHED EARLIER);
//! - CONDSTORE: `UID FETCH 1:<n> (UID FLAGS) (CHANGEDSINCE modseq)` for the
//!   changes, and `UID SEARCH UID 1:<n>` (UIDs only) to see which known
//!   messages are gone;
//! - neither: the flags of every message (`UID FETCH 1:<n> (UID FLAGS)`),
//!   still without sizes and Message-ID headers.
//!
//! Either way messages from the last UIDNEXT on, and any older message
//! the state does not know (a message skipped before, then changed), are
//! listed in full, as in [`ImapStore::list_messages`]. Another UIDVALIDITY,
//! or a mailbox that lost its mod-sequences, is a full listing.

use super::folders::{message_meta, snapshot_items};
use super::{ImapStore, ImapStoreError, Result, uid_key};
use ferry_core::store::{Since, Snapshot};
use ferry_core::{Flags, MessageKey, MessageMeta};
use ferry_imap::proto::command::uid_set;
use ferry_imap::proto::response::Fetch;
use ferry_imap::{SelectOptions, Selected};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

/// The longest known-UID set sent with a QRESYNC SELECT; beyond it the
/// server works out what vanished alone.
const KNOWN_SET_LIMIT: usize = 8 * 1024;

/// What the server said changed among the messages below the old UIDNEXT.
struct Delta {
    /// FETCH responses of changed messages.
    changed: Vec<Fetch>,
    /// Which known messages are gone.
    gone: Gone,
}

/// How the server told which messages are gone.
enum Gone {
    /// Reported as vanished (QRESYNC).
    Vanished(Vec<RangeInclusive<u32>>),
    /// Every message still there is listed (CONDSTORE's SEARCH, or a flag
    /// listing of all).
    Present(BTreeSet<u32>),
}

impl Gone {
    fn contains(&self, uid: u32) -> bool {
        match self {
            Gone::Vanished(ranges) => ranges.iter().any(|r| r.contains(&uid)),
            Gone::Present(present) => !present.contains(&uid),
        }
    }
}

impl ImapStore {
    /// [`Store::snapshot_since`](ferry_core::store::Store::snapshot_since).
    pub(super) fn list_changes(&mut self, folder: &str, since: &Since) -> Result<Snapshot> {
        let (Some(validity), Some(uid_next)) = (since.identity.validity, since.markers.uid_next)
        else {
            return self.list_messages(folder);
        };
        let wire = self.wire(folder)?;
        let qresync = since
            .markers
            .mod_seq
            .filter(|_| self.session.enabled().iter().any(|e| e == "QRESYNC"));
        let options = SelectOptions {
            condstore: true,
            qresync: qresync.map(|m| (validity.get(), m, known_set(since))),
            ..SelectOptions::default()
        };
        let mut selected = self
            .session
            .select(&wire, &options)
            .map_err(|e| ImapStoreError::folder(folder, e))?;
        let mod_seq = since.markers.mod_seq.filter(|_| !selected.no_mod_seq);
        if selected.uid_validity != Some(validity.get()) || (qresync.is_some() && mod_seq.is_none())
        {
            return self.list_selected(folder, selected);
        }
        let delta = match (qresync, mod_seq) {
            (Some(_), Some(_)) => Delta {
                changed: std::mem::take(&mut selected.changed),
                gone: Gone::Vanished(std::mem::take(&mut selected.vanished)),
            },
            (None, Some(m)) if self.session.has_capability("CONDSTORE") => {
                self.changed_since(folder, uid_next, m)?
            }
            _ => self.all_flags(folder, uid_next)?,
        };
        let (messages, unknown) = merge(since, uid_next, delta);
        // The same UIDNEXT: nothing arrived since.
        let mut listed = match selected.uid_next == Some(uid_next) {
            true => Vec::new(),
            false => self.fetch_full(folder, &format!("{uid_next}:*"), &selected)?,
        };
        listed.retain(|m| key_uid(&m.key).is_some_and(|uid| uid >= uid_next));
        if !unknown.is_empty() {
            listed.extend(self.fetch_full(folder, &uid_set(&unknown), &selected)?);
        }
        Ok(self.snapshot_of(selected, messages.into_iter().chain(listed).collect()))
    }

    /// CONDSTORE: the flags of messages below `uid_next` changed since
    /// `mod_seq`, and the UIDs of all messages below it.
    fn changed_since(&mut self, folder: &str, uid_next: u32, mod_seq: u64) -> Result<Delta> {
        let mut changed = Vec::new();
        let present = match uid_next > 1 {
            true => {
                let range = format!("1:{}", uid_next - 1);
                self.session
                    .uid_fetch_each(&range, "UID FLAGS", Some(mod_seq), &mut |f| changed.push(f))
                    .map_err(|e| ImapStoreError::folder(folder, e))?;
                self.session
                    .uid_search(&format!("UID {range}"))
                    .map_err(|e| ImapStoreError::folder(folder, e))?
            }
            false => Vec::new(),
        };
        Ok(Delta {
            changed,
            gone: Gone::Present(present.into_iter().collect()),
        })
    }

    /// Neither: the flags of every message below `uid_next`.
    fn all_flags(&mut self, folder: &str, uid_next: u32) -> Result<Delta> {
        let mut changed = Vec::new();
        if uid_next > 1 {
            self.session
                .uid_fetch_each(
                    &format!("1:{}", uid_next - 1),
                    "UID FLAGS",
                    None,
                    &mut |f| changed.push(f),
                )
                .map_err(|e| ImapStoreError::folder(folder, e))?;
        }
        let present = changed.iter().filter_map(|f| f.uid).collect();
        Ok(Delta {
            changed,
            gone: Gone::Present(present),
        })
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

/// The known UIDs as a set for QRESYNC, unless it would be long.
fn known_set(since: &Since) -> Option<String> {
    let uids: Vec<u32> = since.known.iter().filter_map(|(k, _)| key_uid(k)).collect();
    let set = uid_set(&uids);
    (!set.is_empty() && set.len() <= KNOWN_SET_LIMIT).then_some(set)
}

fn key_uid(key: &MessageKey) -> Option<u32> {
    match key {
        MessageKey::Uid(uid) => Some(uid.get()),
        MessageKey::Name(_) => None,
    }
}

/// The known messages below `uid_next` that are still there, with their
/// flags now; and the UIDs of changed messages the state does not know,
/// which are fetched in full. Known messages from `uid_next` on are left to
/// the full listing of that range.
fn merge(since: &Since, uid_next: u32, delta: Delta) -> (Vec<MessageMeta>, Vec<u32>) {
    let mut known: BTreeMap<u32, Flags> = since
        .known
        .iter()
        .filter_map(|(key, flags)| Some((key_uid(key)?, flags.clone())))
        .filter(|(uid, _)| *uid < uid_next && !delta.gone.contains(*uid))
        .collect();
    let mut unknown = Vec::new();
    for fetch in delta.changed {
        let Some(uid) = fetch.uid.filter(|&uid| uid < uid_next) else {
            continue;
        };
        match (known.get_mut(&uid), fetch.flags.is_some()) {
            (Some(flags), true) => *flags = super::fetched_flags(&fetch),
            _ if !delta.gone.contains(uid) => {
                known.remove(&uid);
                unknown.push(uid);
            }
            _ => {}
        }
    }
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
    fn vanished_go_changed_update_the_rest_keep_their_flags() {
        let since = since(&[(1, &[Flag::Seen]), (2, &[]), (3, &[]), (9, &[])]);
        let delta = Delta {
            changed: vec![fetch(2, Some(&["\\Flagged"])), fetch(12, Some(&[]))],
            gone: Gone::Vanished(vec![3..=4]),
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
            gone: Gone::Present([1, 5].into_iter().collect()),
        };
        let (messages, unknown) = merge(&since, 10, delta);
        // 2 is gone; 11 (from the old UIDNEXT on) is left to the full
        // listing; 1 changed without flags is listed in full; so is 5.
        assert_eq!(listed(&messages), []);
        assert_eq!(unknown, [5, 1]);
    }
}
