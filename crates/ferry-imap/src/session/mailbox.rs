//! Mailbox commands: NAMESPACE, LIST (with SPECIAL-USE and LIST-STATUS),
//! STATUS, SELECT/EXAMINE (CONDSTORE, QRESYNC), CREATE, DELETE, RENAME,
//! SUBSCRIBE, UNSELECT.

use super::Session;
use crate::error::{Error, Result};
use crate::proto::command::Command;
use crate::proto::framing::KeepInMemory;
use crate::proto::response::{Fetch, ListEntry, MailboxStatus, ResponseCode, Untagged};
use std::ops::RangeInclusive;

/// STATUS items ferry asks for.
const STATUS_ITEMS: &str = "MESSAGES UIDNEXT UIDVALIDITY";

/// How to open a mailbox.
#[derive(Debug, Clone, Default)]
pub struct SelectOptions {
    /// EXAMINE instead of SELECT.
    pub read_only: bool,
    /// Ask for mod-sequences (CONDSTORE), when the server offers it.
    pub condstore: bool,
    /// QRESYNC: the UIDVALIDITY and HIGHESTMODSEQ known from the last sync,
    /// and optionally the known UIDs, so the server reports what changed
    /// (FETCH) and what vanished (VANISHED EARLIER). Used only when QRESYNC
    /// is enabled.
    pub qresync: Option<(u32, u64, Option<String>)>,
}

/// What SELECT reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// The mailbox's wire name.
    pub mailbox: String,
    /// EXISTS.
    pub exists: u32,
    /// UIDVALIDITY (never zero; `None` only from a broken server).
    pub uid_validity: Option<u32>,
    /// UIDNEXT, when sent.
    pub uid_next: Option<u32>,
    /// HIGHESTMODSEQ, when the mailbox has mod-sequences.
    pub highest_mod_seq: Option<u64>,
    /// The server said NOMODSEQ: no mod-sequences here.
    pub no_mod_seq: bool,
    /// FLAGS.
    pub flags: Vec<String>,
    /// PERMANENTFLAGS.
    pub permanent_flags: Vec<String>,
    /// READ-ONLY.
    pub read_only: bool,
    /// MAILBOXID (RFC 8474).
    pub mailbox_id: Option<String>,
    /// UIDs reported VANISHED (EARLIER) by a QRESYNC select.
    pub vanished: Vec<RangeInclusive<u32>>,
    /// FETCH responses of a QRESYNC select (messages changed since).
    pub changed: Vec<Fetch>,
}

impl Session {
    /// The personal namespaces as (prefix, delimiter); without NAMESPACE
    /// support, the root with the delimiter LIST reports.
    pub fn namespace(&mut self) -> Result<Vec<(String, Option<char>)>> {
        if !self.has_capability("NAMESPACE") {
            let delimiter = self.list("", "")?.first().and_then(|e| e.delimiter);
            return Ok(vec![(String::new(), delimiter)]);
        }
        let (_, untagged) = self.run(Command::new("NAMESPACE"))?;
        Ok(untagged
            .into_iter()
            .find_map(|u| match u {
                Untagged::Namespace(ns) => Some(ns),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// LIST `reference` `pattern` (wire names); with SPECIAL-USE, the
    /// special-use attributes are asked for explicitly.
    pub fn list(&mut self, reference: &str, pattern: &str) -> Result<Vec<ListEntry>> {
        let mut command = Command::new("LIST")
            .string(reference.as_bytes())
            .string(pattern.as_bytes());
        if self.has_capability("SPECIAL-USE") && self.has_capability("LIST-EXTENDED") {
            command = command.raw("RETURN (SPECIAL-USE)");
        }
        let (_, untagged) = self.run(command)?;
        Ok(untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::List(entry) => Some(entry),
                _ => None,
            })
            .collect())
    }

    /// Every mailbox with its status, in one round trip with LIST-STATUS,
    /// else LIST followed by pipelined STATUS commands. `\Noselect`
    /// mailboxes have no status.
    pub fn list_with_status(
        &mut self,
        with_mod_seq: bool,
    ) -> Result<Vec<(ListEntry, Option<MailboxStatus>)>> {
        if let Some(tag) = self.send_list_with_status(with_mod_seq)? {
            return self.finish_list_with_status(&tag);
        }
        let entries = self.list("", "*")?;
        let names: Vec<String> = entries
            .iter()
            .filter(|e| !e.is_noselect())
            .map(|e| e.wire_name.clone())
            .collect();
        let statuses = self.status_many(&names, with_mod_seq)?;
        Ok(entries
            .into_iter()
            .map(|entry| {
                let status = statuses
                    .iter()
                    .find(|s| s.mailbox == entry.wire_name)
                    .cloned();
                (entry, status)
            })
            .collect())
    }

    /// Sends LIST-STATUS for every mailbox without waiting for it, and
    /// returns its tag for [`Session::finish_list_with_status`]; `None`
    /// (and nothing sent) where the server lacks LIST-STATUS. Until it is
    /// finished, no other command may be waited for: its wait would take
    /// the listing's responses (and leave this one's completion empty).
    pub fn send_list_with_status(&mut self, with_mod_seq: bool) -> Result<Option<String>> {
        if !self.has_capability("LIST-STATUS") {
            return Ok(None);
        }
        let items = self.status_items(with_mod_seq);
        let list = Command::new("LIST").raw(&format!("\"\" \"*\" RETURN (STATUS ({items}))"));
        self.send(list).map(Some)
    }

    /// Waits for the listing [`Session::send_list_with_status`] sent.
    pub fn finish_list_with_status(
        &mut self,
        tag: &str,
    ) -> Result<Vec<(ListEntry, Option<MailboxStatus>)>> {
        let mut untagged = Vec::new();
        self.wait(
            tag,
            &mut |u| match u {
                Untagged::List(_) | Untagged::MailboxStatus(_) => {
                    untagged.push(u);
                    None
                }
                other => Some(other),
            },
            &mut KeepInMemory,
        )?;
        Ok(pair_statuses(untagged))
    }

    fn status_items(&self, with_mod_seq: bool) -> String {
        if with_mod_seq && self.has_capability("CONDSTORE") {
            format!("{STATUS_ITEMS} HIGHESTMODSEQ")
        } else {
            STATUS_ITEMS.to_string()
        }
    }

    /// STATUS of one mailbox; a NO (no such mailbox) is an error.
    pub fn status(&mut self, mailbox: &str, with_mod_seq: bool) -> Result<MailboxStatus> {
        let items = self.status_items(with_mod_seq);
        let command = Command::new("STATUS")
            .string(mailbox.as_bytes())
            .raw(&format!("({items})"));
        let (_, untagged) = self.run(command)?;
        untagged
            .into_iter()
            .rev()
            .find_map(|u| match u {
                Untagged::MailboxStatus(status) => Some(status),
                _ => None,
            })
            .ok_or_else(|| Error::Protocol {
                what: format!("STATUS {mailbox} completed without a STATUS response"),
                received: String::new(),
            })
    }

    /// STATUS of many mailboxes, pipelined in one round trip. A mailbox
    /// that fails (NO) is left out.
    pub fn status_many(
        &mut self,
        mailboxes: &[String],
        with_mod_seq: bool,
    ) -> Result<Vec<MailboxStatus>> {
        let items = self.status_items(with_mod_seq);
        let mut statuses = Vec::new();
        let commands = mailboxes.iter().map(|mailbox| {
            Command::new("STATUS")
                .string(mailbox.as_bytes())
                .raw(&format!("({items})"))
        });
        self.pipeline(
            commands,
            |s, c| s.send(c),
            |s, tag| {
                let result = s.wait(
                    tag,
                    &mut |u| match u {
                        Untagged::MailboxStatus(status) => {
                            statuses.push(status);
                            None
                        }
                        other => Some(other),
                    },
                    &mut KeepInMemory,
                );
                match result {
                    Ok(_) => Ok(()),
                    Err(e @ Error::No { .. }) => {
                        tracing::warn!("{e}");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            },
        )?;
        Ok(statuses)
    }

    /// SELECT (or EXAMINE) a mailbox.
    pub fn select(&mut self, mailbox: &str, options: &SelectOptions) -> Result<Selected> {
        let (tag, selected) = self.send_select(mailbox, options)?;
        self.finish_select(&tag, selected)
    }

    /// SELECT with a `UID SEARCH criteria` pipelined behind it: both in one
    /// round trip. The server runs commands in order, so the search sees
    /// the mailbox just selected (after a failed SELECT none is selected,
    /// and the search fails too). Returns what SELECT reported and the
    /// UIDs found.
    pub fn select_then_search(
        &mut self,
        mailbox: &str,
        options: &SelectOptions,
        criteria: &str,
    ) -> Result<(Selected, Vec<u32>)> {
        let (tag, selected) = self.send_select(mailbox, options)?;
        let search = self.send(Command::new("UID SEARCH").raw(criteria))?;
        let selected = self.finish_select(&tag, selected);
        let searched = self.finish_search(&search);
        let selected = selected?;
        Ok((selected, searched?))
    }

    fn send_select(
        &mut self,
        mailbox: &str,
        options: &SelectOptions,
    ) -> Result<(String, Selected)> {
        let verb = if options.read_only {
            "EXAMINE"
        } else {
            "SELECT"
        };
        let mut command = Command::new(verb).string(mailbox.as_bytes());
        let qresync = self.enabled.iter().any(|e| e == "QRESYNC");
        match &options.qresync {
            Some((validity, modseq, known)) if qresync && *modseq > 0 => {
                let known = known.as_ref().map(|k| format!(" {k}")).unwrap_or_default();
                command = command.raw(&format!("(QRESYNC ({validity} {modseq}{known}))"));
            }
            _ if options.condstore && self.has_capability("CONDSTORE") && !qresync => {
                command = command.raw("(CONDSTORE)");
            }
            _ => {}
        }
        self.selected = None;
        let selected = Selected {
            mailbox: mailbox.to_string(),
            read_only: options.read_only,
            ..Selected::default()
        };
        Ok((self.send(command)?, selected))
    }

    fn finish_select(&mut self, tag: &str, mut selected: Selected) -> Result<Selected> {
        let completion = self.wait(
            tag,
            &mut |u| absorb_select(&mut selected, u),
            &mut KeepInMemory,
        )?;
        match completion.code {
            Some(ResponseCode::ReadOnly) => selected.read_only = true,
            Some(ResponseCode::ReadWrite) => selected.read_only = false,
            _ => {}
        }
        let verb = if selected.read_only {
            "EXAMINE"
        } else {
            "SELECT"
        };
        if selected.uid_validity.is_none() {
            return Err(Error::Protocol {
                what: format!("{verb} {} did not report a UIDVALIDITY", selected.mailbox),
                received: String::new(),
            });
        }
        self.selected = Some(selected.mailbox.clone());
        Ok(selected)
    }

    /// Leaves the selected mailbox without expunging (UNSELECT; without it,
    /// EXAMINE of the same mailbox, never CLOSE).
    pub fn unselect(&mut self) -> Result<()> {
        let Some(mailbox) = self.selected.clone() else {
            return Ok(());
        };
        if self.has_capability("UNSELECT") {
            self.run(Command::new("UNSELECT"))?;
        } else {
            self.select(
                &mailbox,
                &SelectOptions {
                    read_only: true,
                    ..SelectOptions::default()
                },
            )?;
        }
        self.selected = None;
        Ok(())
    }

    /// CREATE a mailbox (wire name).
    pub fn create(&mut self, mailbox: &str) -> Result<()> {
        self.run(Command::new("CREATE").string(mailbox.as_bytes()))
            .map(drop)
    }

    /// DELETE a mailbox (wire name).
    pub fn delete(&mut self, mailbox: &str) -> Result<()> {
        self.run(Command::new("DELETE").string(mailbox.as_bytes()))
            .map(drop)
    }

    /// RENAME a mailbox (wire names).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.run(
            Command::new("RENAME")
                .string(from.as_bytes())
                .string(to.as_bytes()),
        )
        .map(drop)
    }

    /// SUBSCRIBE to a mailbox (wire name).
    pub fn subscribe(&mut self, mailbox: &str) -> Result<()> {
        self.run(Command::new("SUBSCRIBE").string(mailbox.as_bytes()))
            .map(drop)
    }
}

fn absorb_select(selected: &mut Selected, untagged: Untagged) -> Option<Untagged> {
    match untagged {
        Untagged::Exists(n) => selected.exists = n,
        Untagged::Flags(flags) => selected.flags = flags,
        Untagged::Vanished {
            earlier: true,
            uids,
        } => selected.vanished.extend(uids),
        Untagged::Fetch(fetch) => selected.changed.push(fetch),
        Untagged::Status {
            code: Some(code), ..
        } => match code {
            ResponseCode::UidValidity(v) => selected.uid_validity = Some(v),
            ResponseCode::UidNext(n) => selected.uid_next = Some(n),
            ResponseCode::HighestModSeq(m) => selected.highest_mod_seq = Some(m),
            ResponseCode::NoModSeq => selected.no_mod_seq = true,
            ResponseCode::PermanentFlags(flags) => selected.permanent_flags = flags,
            ResponseCode::MailboxId(id) => selected.mailbox_id = Some(id),
            // What came before belongs to the mailbox just closed
            // (RFC 7162 3.2.11): none of it describes this one.
            ResponseCode::Closed => {
                let mailbox = std::mem::take(&mut selected.mailbox);
                let read_only = selected.read_only;
                *selected = Selected {
                    mailbox,
                    read_only,
                    ..Selected::default()
                };
            }
            other => {
                return Some(Untagged::Status {
                    status: crate::proto::response::Status::Ok,
                    code: Some(other),
                    text: String::new(),
                });
            }
        },
        Untagged::Recent(_) => {}
        other => return Some(other),
    }
    None
}

fn pair_statuses(untagged: Vec<Untagged>) -> Vec<(ListEntry, Option<MailboxStatus>)> {
    let mut entries: Vec<(ListEntry, Option<MailboxStatus>)> = Vec::new();
    let mut statuses = Vec::new();
    for u in untagged {
        match u {
            Untagged::List(entry) => entries.push((entry, None)),
            Untagged::MailboxStatus(status) => statuses.push(status),
            _ => {}
        }
    }
    for status in statuses {
        if let Some(slot) = entries
            .iter_mut()
            .find(|(e, _)| e.wire_name == status.mailbox)
        {
            slot.1 = Some(status);
        }
    }
    entries
}
