//! Folders: the listing with status, CREATE, DELETE, RENAME, and the
//! snapshot of one folder's messages.

use super::{ImapStore, ImapStoreError, Refusal, Result, uid_key};
use ferry_core::store::{FolderIdentity, FolderStatus, Markers, Snapshot};
use ferry_core::{MessageMeta, UidValidity};
use ferry_imap::Session;
use ferry_imap::proto::response::{Fetch, ListEntry, MailboxStatus};
use std::collections::HashSet;

/// What a snapshot asks of every message.
/// Flags and size for the plan, and the Message-ID so that a message that
/// moved between folders is recognised (design.md: same Message-ID and
/// size on the server) instead of downloaded again.
const SNAPSHOT_ITEMS: &str = "UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]";

/// The same with the server's id of each message (RFC 8474 OBJECTID), by
/// which a message moved between folders is recognised for certain.
const SNAPSHOT_ITEMS_WITH_IDS: &str =
    "UID FLAGS RFC822.SIZE EMAILID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]";

/// The most messages a snapshot reserves room for before they arrive (a
/// server's EXISTS is not trusted with an allocation).
const RESERVE_LIMIT: usize = 100_000;

/// Every mailbox with its status, as the server listed it.
type Listed = Vec<(ListEntry, Option<MailboxStatus>)>;

/// The folder listing sent with ENABLE and NAMESPACE at login: it shares
/// their round trip, and the server works on it while ferry reads its
/// state and its Maildir. The first `list_folders` takes it; any other
/// command reads and drops it first, as its responses must not be taken
/// for that command's (the folders may have changed by then, too).
#[derive(Debug)]
pub(super) enum EarlyListing {
    /// Sent under this tag; its responses are unread.
    Sent(String),
    /// Read already (the session needed to send another LIST).
    Received(ferry_imap::Result<Listed>),
}

impl EarlyListing {
    /// Reads the listing's responses.
    pub(super) fn receive(self, session: &mut Session) -> EarlyListing {
        match self {
            EarlyListing::Sent(tag) => {
                EarlyListing::Received(session.finish_list_with_status(&tag))
            }
            received => received,
        }
    }
}

impl ImapStore {
    /// LIST with status (LIST-STATUS in one round trip, else pipelined
    /// STATUS), in local names; names without a local form are skipped.
    /// `early` is the listing sent at login, if it is still to be used.
    pub(super) fn list_all(&mut self, early: Option<EarlyListing>) -> Result<Vec<FolderStatus>> {
        let listed = match early.map(|early| early.receive(&mut self.session)) {
            Some(EarlyListing::Received(listed)) => listed,
            _ => self.session.list_with_status(true),
        }
        .map_err(ImapStoreError::Session)?;
        let mut seen = HashSet::new();
        let mut folders = Vec::with_capacity(listed.len());
        for (entry, status) in listed {
            let Some(folder) = self.folder_status(&entry, status) else {
                continue;
            };
            if seen.insert(folder.name.clone()) {
                folders.push(folder);
            } else {
                tracing::warn!(
                    "server folder {:?} is skipped: another folder has the same local name",
                    entry.wire_name
                );
            }
        }
        Ok(folders)
    }

    /// Reads and drops the listing sent at login, before another command
    /// is sent. Its NO or BAD concerns nobody (the listing is not used);
    /// only a lost session is an error.
    pub(super) fn drop_early_listing(&mut self) -> Result<()> {
        let Some(EarlyListing::Sent(tag)) = self.early_listing.take() else {
            return Ok(());
        };
        match self.session.finish_list_with_status(&tag) {
            Ok(_) => Ok(()),
            Err(e) if e.session_usable() => {
                tracing::debug!("the folder listing sent at login, unused, failed: {e}");
                Ok(())
            }
            Err(e) => {
                let error = ImapStoreError::Session(e);
                self.note(&error);
                Err(error)
            }
        }
    }

    fn folder_status(
        &self,
        entry: &ListEntry,
        status: Option<MailboxStatus>,
    ) -> Option<FolderStatus> {
        let name = match self.names.try_local_name(&entry.wire_name) {
            Ok(name) => name,
            Err(problem) => {
                tracing::warn!("server folder {:?} is not synced: {problem}", entry.name);
                return None;
            }
        };
        let status = status.unwrap_or_default();
        Some(FolderStatus {
            name,
            identity: FolderIdentity {
                validity: status.uid_validity.and_then(|v| UidValidity::new(v).ok()),
                mailbox_id: None,
            },
            markers: Markers {
                uid_next: status.uid_next,
                // 0 is no HIGHESTMODSEQ (RFC 7162: a server that cannot
                // keep mod-sequences for the mailbox).
                mod_seq: status.highest_mod_seq.filter(|&m| m > 0),
                messages: status.messages,
                stamps: None,
            },
            selectable: !entry.is_noselect(),
        })
    }

    /// CREATE; a folder that exists already is success.
    pub(super) fn create(&mut self, folder: &str) -> Result<()> {
        let wire = self.wire(folder)?;
        let error = match self.session.create(&wire) {
            Ok(()) => {
                ferry_core::crashpoint::step("imap create");
                return Ok(());
            }
            Err(e) => Refusal::from_imap(e).map_err(ImapStoreError::Session)?,
        };
        let exists = matches!(
            ImapStoreError::folder_refused(folder, error.clone()),
            ImapStoreError::FolderExists { .. }
        ) || self.exists(&wire)?;
        if exists {
            return Ok(());
        }
        Err(ImapStoreError::folder_refused(folder, error))
    }

    fn exists(&mut self, wire: &str) -> Result<bool> {
        let listed = self
            .session
            .list("", wire)
            .map_err(ImapStoreError::Session)?;
        Ok(listed.iter().any(|e| e.wire_name == wire))
    }

    /// DELETE of an empty folder; one that holds messages is refused
    /// (IMAP DELETE would destroy them), one that is gone already is
    /// success.
    pub(super) fn delete(&mut self, folder: &str) -> Result<()> {
        let wire = self.wire(folder)?;
        self.leave(&wire)?;
        let status = match self.session.status(&wire, false) {
            Ok(status) => status,
            Err(e) => {
                let refusal = Refusal::from_imap(e).map_err(ImapStoreError::Session)?;
                if self.exists(&wire)? {
                    return Err(ImapStoreError::folder_refused(folder, refusal));
                }
                return Ok(());
            }
        };
        if let Some(messages) = status.messages.filter(|&n| n > 0) {
            return Err(ImapStoreError::NotEmpty {
                folder: folder.to_string(),
                messages,
            });
        }
        self.session
            .delete(&wire)
            .map_err(|e| ImapStoreError::folder(folder, e))?;
        ferry_core::crashpoint::step("imap delete");
        Ok(())
    }

    /// RENAME (not of INBOX: IMAP moves INBOX's messages instead).
    pub(super) fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        if from.eq_ignore_ascii_case("INBOX") {
            return Err(ImapStoreError::BadName {
                name: from.to_string(),
                problem: "INBOX cannot be renamed (IMAP would move its messages instead)",
            });
        }
        let (from_wire, to_wire) = (self.wire(from)?, self.wire(to)?);
        self.leave(&from_wire)?;
        self.session
            .rename(&from_wire, &to_wire)
            .map_err(|e| ImapStoreError::folder(from, e))?;
        ferry_core::crashpoint::step("imap rename");
        Ok(())
    }

    /// Unselects `wire` if it is selected (before DELETE or RENAME).
    fn leave(&mut self, wire: &str) -> Result<()> {
        if self.session.selected() == Some(wire) {
            self.session.unselect().map_err(ImapStoreError::Session)?;
        }
        Ok(())
    }

    /// SELECT (always: the markers must be those of now), then every
    /// message's UID, flags and size.
    pub(super) fn list_messages(&mut self, folder: &str) -> Result<Snapshot> {
        let wire = self.wire(folder)?;
        // A new listing may see a new UIDVALIDITY.
        self.validities.remove(folder);
        let selected = self.select(folder, &wire)?;
        self.list_selected(folder, selected)
    }

    /// Every message of the folder just selected.
    pub(super) fn list_selected(
        &mut self,
        folder: &str,
        selected: ferry_imap::Selected,
    ) -> Result<Snapshot> {
        let reserve = usize::try_from(selected.exists).map_or(0, |n| n.min(RESERVE_LIMIT));
        let mut messages = Vec::with_capacity(reserve);
        let items = snapshot_items(self.session.has_capability("OBJECTID"));
        if selected.exists > 0 {
            self.session
                .uid_fetch_each("1:*", items, None, &mut |fetch| {
                    messages.extend(message_meta(fetch));
                })
                .map_err(|e| ImapStoreError::folder(folder, e))?;
        }
        Ok(self.snapshot_of(selected, messages))
    }

    /// The snapshot of `messages`, with the identity and markers SELECT
    /// reported; sorted by key, one entry per key (the last listed wins).
    pub(super) fn snapshot_of(
        &self,
        selected: ferry_imap::Selected,
        mut messages: Vec<MessageMeta>,
    ) -> Snapshot {
        messages.reverse();
        messages.sort_by(|a, b| a.key.cmp(&b.key));
        messages.dedup_by(|a, b| a.key == b.key);
        Snapshot {
            unsettled: false,
            identity: FolderIdentity {
                validity: selected.uid_validity.and_then(|v| UidValidity::new(v).ok()),
                mailbox_id: selected.mailbox_id,
            },
            markers: Markers {
                uid_next: selected.uid_next,
                mod_seq: selected
                    .highest_mod_seq
                    .filter(|&m| m > 0 && !selected.no_mod_seq),
                messages: Some(selected.exists),
                stamps: None,
            },
            messages,
        }
    }
}

/// What a snapshot asks of each message, with EMAILID where the server
/// offers OBJECTID.
pub(super) fn snapshot_items(objectid: bool) -> &'static str {
    match objectid {
        true => SNAPSHOT_ITEMS_WITH_IDS,
        false => SNAPSHOT_ITEMS,
    }
}

/// A snapshot's view of one FETCH.
pub(super) fn message_meta(fetch: Fetch) -> Option<MessageMeta> {
    let key = uid_key(fetch.uid?)?;
    let flags = super::fetched_flags(&fetch);
    let mut meta = MessageMeta::new(key, flags);
    meta.size = fetch.size.map(u64::from);
    meta.email_id = fetch.email_id.map(String::into_boxed_str);
    meta.message_id = fetch
        .header_fields
        .as_deref()
        .and_then(|header| ferry_core::header_message_id(header, true))
        .map(String::into_boxed_str);
    Some(meta)
}
