//! Message commands on the selected mailbox: UID FETCH (flags, metadata,
//! bodies streamed to writers), UID STORE with UNCHANGEDSINCE (pipelined
//! across several changes), UID SEARCH, UID COPY, UID MOVE, UID EXPUNGE,
//! and APPEND (pipelined; its literal streamed from a reader, or written
//! piecewise by the caller as the bytes arrive: [`Session::begin_append`]).
//!
//! Flags are changed with `+FLAGS.SILENT` / `-FLAGS.SILENT`, never by
//! replacing the whole set; `\Recent` is never sent; only our own messages
//! are expunged (UID EXPUNGE), never with EXPUNGE or CLOSE.

use super::Session;
use crate::error::{Error, Result};
use crate::proto::command::{Command, LiteralData, uid_set};
use crate::proto::framing::{KeepInMemory, LiteralSink};
use crate::proto::response::{Completion, Fetch, ResponseCode, Untagged};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::ops::RangeInclusive;

/// The items of a metadata fetch: everything but the body.
pub const META_ITEMS: &str = "UID FLAGS RFC822.SIZE INTERNALDATE";

/// How many UIDs one command names at most (keeps lines short).
const UIDS_PER_COMMAND: usize = 2000;

/// A body fetched into a writer.
#[derive(Debug)]
pub struct FetchedBody<W> {
    /// The message's UID.
    pub uid: u32,
    /// Its flags.
    pub flags: Vec<String>,
    /// Its INTERNALDATE as sent.
    pub internal_date: Option<String>,
    /// Its RFC822.SIZE.
    pub size: Option<u32>,
    /// Its MODSEQ, with CONDSTORE.
    pub mod_seq: Option<u64>,
    /// The writer that received the body.
    pub body: W,
    /// How many body bytes it received.
    pub len: u64,
}

/// Which part of a message to fetch as the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyItem {
    /// The whole message (`BODY.PEEK[]`), never setting `\Seen`.
    Full,
    /// The header only (`BODY.PEEK[HEADER]`).
    Header,
}

/// The result of a UID STORE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreResult {
    /// UIDs the server did not change because they were modified since the
    /// given mod-sequence (`[MODIFIED]`): refetch, re-merge, retry.
    pub modified: Vec<u32>,
    /// FETCH responses the server sent (other changes, MODSEQ updates).
    pub fetched: Vec<Fetch>,
}

/// Each UID STORE's result, and the UIDs a search behind them found.
pub type StoresAndSearch = (Vec<Result<StoreResult>>, Result<Vec<u32>>);

/// One message to APPEND.
#[derive(Debug)]
pub struct AppendRequest {
    /// The target mailbox (wire name).
    pub mailbox: String,
    /// IMAP flags to set (`\Recent` is dropped).
    pub flags: Vec<String>,
    /// INTERNALDATE in Unix seconds.
    pub internal_date: Option<i64>,
    /// The message, with CRLF line endings, and its exact length.
    pub message: LiteralData,
}

/// Everything of an APPEND but the message's bytes, for a message streamed
/// with [`Session::begin_append`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendHeader {
    /// The target mailbox (wire name).
    pub mailbox: String,
    /// IMAP flags to set (`\Recent` is dropped).
    pub flags: Vec<String>,
    /// INTERNALDATE in Unix seconds.
    pub internal_date: Option<i64>,
}

/// One flag change for [`Session::uid_store_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    /// The messages.
    pub uids: Vec<u32>,
    /// `+FLAGS.SILENT` (true) or `-FLAGS.SILENT` (false).
    pub add: bool,
    /// IMAP flag names (`\Recent` is dropped).
    pub flags: Vec<String>,
    /// With CONDSTORE: leave messages changed since this mod-sequence alone
    /// and report them ([`StoreResult::modified`]).
    pub unchanged_since: Option<u64>,
}

/// Where an appended message landed, from APPENDUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The mailbox's UIDVALIDITY.
    pub uid_validity: u32,
    /// The new message's UID.
    pub uid: u32,
}

impl AppendResult {
    /// The APPENDUID of an APPEND's completion, if it names one message.
    pub fn from_completion(completion: &Completion) -> Option<AppendResult> {
        match &completion.code {
            Some(ResponseCode::AppendUid { validity, uids }) if uids.len() == 1 => {
                Some(AppendResult {
                    uid_validity: *validity,
                    uid: uids[0],
                })
            }
            _ => None,
        }
    }
}

impl Session {
    /// UID FETCH of `uids` (a UID set such as `1:*`) with `items`, with
    /// CHANGEDSINCE (CONDSTORE) and VANISHED (QRESYNC) when asked and
    /// available; `each` gets every FETCH. Returns VANISHED UIDs.
    pub fn uid_fetch_each(
        &mut self,
        uids: &str,
        items: &str,
        changed_since: Option<u64>,
        each: &mut dyn FnMut(Fetch),
    ) -> Result<Vec<RangeInclusive<u32>>> {
        let mut command = Command::new("UID FETCH")
            .raw(uids)
            .raw(&format!("({items})"));
        if let Some(modseq) = changed_since.filter(|_| self.has_capability("CONDSTORE")) {
            let vanished = if self.qresync_enabled() {
                " VANISHED"
            } else {
                ""
            };
            command = command.raw(&format!("(CHANGEDSINCE {modseq}{vanished})"));
        }
        let mut vanished = Vec::new();
        let tag = self.send(command)?;
        self.wait(
            &tag,
            &mut |u| match u {
                Untagged::Fetch(fetch) if fetch.uid.is_some() => {
                    each(fetch);
                    None
                }
                Untagged::Vanished {
                    earlier: true,
                    uids,
                } => {
                    vanished.extend(uids);
                    None
                }
                other => Some(other),
            },
            &mut KeepInMemory,
        )?;
        Ok(vanished)
    }

    /// [`Session::uid_fetch_each`] collected into a vector.
    pub fn uid_fetch(
        &mut self,
        uids: &str,
        items: &str,
        changed_since: Option<u64>,
    ) -> Result<(Vec<Fetch>, Vec<RangeInclusive<u32>>)> {
        let mut fetched = Vec::new();
        let vanished = self.uid_fetch_each(uids, items, changed_since, &mut |f| fetched.push(f))?;
        Ok((fetched, vanished))
    }

    fn qresync_enabled(&self) -> bool {
        self.enabled.iter().any(|e| e == "QRESYNC")
    }

    /// Fetches the bodies of `uids` (with flags, size, date), each streamed
    /// into a writer from `open(len)`; `done` receives each finished one.
    /// Memory stays bounded whatever the message sizes. Commands for
    /// batches of UIDs are pipelined.
    pub fn fetch_bodies<W: Write>(
        &mut self,
        uids: &[u32],
        item: BodyItem,
        open: &mut dyn FnMut(u64) -> io::Result<W>,
        done: &mut dyn FnMut(FetchedBody<W>) -> Result<()>,
    ) -> Result<()> {
        let section = match item {
            BodyItem::Full => "BODY.PEEK[]",
            BodyItem::Header => "BODY.PEEK[HEADER]",
        };
        let sink = RefCell::new(BodySink {
            open,
            current: None,
            finished: VecDeque::new(),
        });
        let mut failure = None;
        let commands = uids.chunks(UIDS_PER_COMMAND).map(|chunk| {
            Command::new("UID FETCH")
                .raw(&uid_set(chunk))
                .raw(&format!("({META_ITEMS} {section})"))
        });
        self.pipeline(
            commands,
            |s, c| s.send(c),
            |s, tag| {
                let mut handler = |u: Untagged| match u {
                    Untagged::Fetch(fetch) if fetch.uid.is_none() && fetch.body.is_some() => {
                        // A body without a UID (a broken server) is dropped,
                        // with the writer it may have filled.
                        if fetch.body.as_ref().is_some_and(Vec::is_empty) {
                            sink.borrow_mut().finished.pop_front();
                        }
                        None
                    }
                    Untagged::Fetch(fetch) if fetch.body.is_some() => {
                        if failure.is_none() {
                            if let Err(e) = deliver(&mut sink.borrow_mut(), fetch, done) {
                                failure = Some(e);
                            }
                        }
                        None
                    }
                    other => Some(other),
                };
                let result = s.wait(tag, &mut handler, &mut SharedSink(&sink));
                match failure.take() {
                    Some(e) => Err(e),
                    None => result.map(drop),
                }
            },
        )?;
        Ok(())
    }

    /// UID STORE `+FLAGS.SILENT` (add) or `-FLAGS.SILENT` (remove); with
    /// `unchanged_since` and CONDSTORE, messages changed meanwhile are left
    /// alone and reported in [`StoreResult::modified`].
    pub fn uid_store(
        &mut self,
        uids: &[u32],
        add: bool,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<StoreResult> {
        let update = FlagUpdate {
            uids: uids.to_vec(),
            add,
            flags: flags.to_vec(),
            unchanged_since,
        };
        let mut results = self.uid_store_many(std::slice::from_ref(&update))?;
        results.pop().unwrap_or_else(|| Ok(StoreResult::default()))
    }

    /// Several UID STOREs pipelined in one round trip, each with its own
    /// result: a NO fails only its change; a broken connection fails all.
    pub fn uid_store_many(&mut self, updates: &[FlagUpdate]) -> Result<Vec<Result<StoreResult>>> {
        Ok(self.uid_store_many_then_search(updates, &[])?.0)
    }

    /// [`Session::uid_store_many`], with `UID SEARCH UID <uids>` pipelined
    /// behind the stores in the same round trip: which of `uids` the
    /// session's mailbox holds (the server may run the search before the
    /// stores end, so it tells which messages exist, not their flags). A
    /// refused search is the second result's error; a broken connection
    /// fails all.
    pub fn uid_store_many_then_search(
        &mut self,
        updates: &[FlagUpdate],
        uids: &[u32],
    ) -> Result<StoresAndSearch> {
        let mut results: Vec<Result<StoreResult>> =
            updates.iter().map(|_| Ok(StoreResult::default())).collect();
        let mut present: Result<Vec<u32>> = Ok(Vec::new());
        let condstore = self.has_capability("CONDSTORE");
        let stores = (updates.iter().enumerate())
            .flat_map(|(i, update)| store_commands(update, condstore).map(move |c| (Some(i), c)));
        let searches = uids.chunks(UIDS_PER_COMMAND).map(|chunk| {
            let criteria = format!("UID {}", uid_set(chunk));
            (None, Command::new("UID SEARCH").raw(&criteria))
        });
        let commands: Vec<(Option<usize>, Command)> = stores.chain(searches).collect();
        self.pipeline(
            commands,
            |s, (i, c)| Ok((i, s.send(c)?)),
            |s, (i, tag)| match i {
                Some(i) => merge(s.finish_store(tag), &mut results[*i], |whole, part| {
                    whole.modified.extend(part.modified);
                    whole.fetched.extend(part.fetched);
                }),
                None => merge(s.finish_search(tag), &mut present, Vec::extend),
            },
        )?;
        Ok((results, present))
    }

    /// Waits for one UID SEARCH, collecting its hits.
    pub(super) fn finish_search(&mut self, tag: &str) -> Result<Vec<u32>> {
        let mut hits = Vec::new();
        self.wait(
            tag,
            &mut |u| match u {
                Untagged::Search(uids) => {
                    hits.extend(uids);
                    None
                }
                other => Some(other),
            },
            &mut KeepInMemory,
        )?;
        Ok(hits)
    }

    /// Waits for one UID STORE, collecting its FETCH and MODIFIED.
    fn finish_store(&mut self, tag: &str) -> Result<StoreResult> {
        let mut result = StoreResult::default();
        let completion = self.wait(
            tag,
            &mut |u| match u {
                Untagged::Fetch(fetch) => {
                    result.fetched.push(fetch);
                    None
                }
                other => Some(other),
            },
            &mut KeepInMemory,
        )?;
        if let Some(ResponseCode::Modified(uids)) = completion.code {
            result.modified.extend(uids);
        }
        Ok(result)
    }

    /// UID SEARCH with raw `criteria` (already encoded).
    pub fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>> {
        let (_, untagged) = self.run(Command::new("UID SEARCH").raw(criteria))?;
        Ok(search_hits(untagged))
    }

    /// The UIDs at or above `from_uid` whose Message-ID header contains
    /// `message_id`: how a lost APPEND is found again (RFC 4549 4.2.2.1).
    pub fn search_message_id(&mut self, from_uid: u32, message_id: &str) -> Result<Vec<u32>> {
        let command = Command::new("UID SEARCH")
            .raw(&format!("UID {}:*", from_uid.max(1)))
            .raw("HEADER Message-ID")
            .string(message_id.as_bytes());
        let (_, untagged) = self.run(command)?;
        let mut hits = search_hits(untagged);
        // "n:*" always includes the highest UID, even below n.
        hits.retain(|&uid| uid >= from_uid);
        Ok(hits)
    }

    /// UID SEARCH for messages from `from_uid` on that have no Message-ID
    /// header (`NOT HEADER Message-ID ""`: an empty string matches every
    /// message that has the field, RFC 3501 6.4.4).
    pub fn search_without_message_id(&mut self, from_uid: u32) -> Result<Vec<u32>> {
        let command = Command::new("UID SEARCH")
            .raw(&format!("UID {}:*", from_uid.max(1)))
            .raw("NOT HEADER Message-ID")
            .string(b"");
        let (_, untagged) = self.run(command)?;
        let mut hits = search_hits(untagged);
        hits.retain(|&uid| uid >= from_uid);
        Ok(hits)
    }

    /// UID COPY to `target`; returns COPYUID (old UIDs -> new UIDs) when the
    /// server reports it.
    pub fn uid_copy(&mut self, uids: &[u32], target: &str) -> Result<Option<ResponseCode>> {
        let command = Command::new("UID COPY")
            .raw(&uid_set(uids))
            .string(target.as_bytes());
        let (completion, _) = self.run(command)?;
        Ok(completion
            .code
            .filter(|c| matches!(c, ResponseCode::CopyUid { .. })))
    }

    /// UID MOVE to `target` (RFC 6851); an error when the server lacks MOVE.
    /// Returns COPYUID when reported (in an untagged OK, or the tagged one).
    pub fn uid_move(&mut self, uids: &[u32], target: &str) -> Result<Option<ResponseCode>> {
        if !self.has_capability("MOVE") {
            return Err(Error::Unsupported {
                what: format!("{} does not support MOVE", self.options.host),
            });
        }
        let command = Command::new("UID MOVE")
            .raw(&uid_set(uids))
            .string(target.as_bytes());
        let (completion, untagged) = self.run(command)?;
        let from_untagged = untagged.into_iter().find_map(|u| match u {
            Untagged::Status {
                code: Some(code @ ResponseCode::CopyUid { .. }),
                ..
            } => Some(code),
            _ => None,
        });
        Ok(from_untagged.or(completion
            .code
            .filter(|c| matches!(c, ResponseCode::CopyUid { .. }))))
    }

    /// UID EXPUNGE (UIDPLUS) of exactly `uids`, which must already carry
    /// `\Deleted`; an error when the server lacks UIDPLUS (plain EXPUNGE
    /// would also destroy messages other clients marked).
    pub fn uid_expunge(&mut self, uids: &[u32]) -> Result<()> {
        if !self.has_capability("UIDPLUS") {
            return Err(Error::Unsupported {
                what: format!(
                    "{} does not support UIDPLUS, so UID EXPUNGE is not available",
                    self.options.host
                ),
            });
        }
        for chunk in uids.chunks(UIDS_PER_COMMAND) {
            self.run(Command::new("UID EXPUNGE").raw(&uid_set(chunk)))?;
        }
        Ok(())
    }

    /// APPENDs one message.
    pub fn append(&mut self, request: AppendRequest) -> Result<Option<AppendResult>> {
        let mut results = self.append_many(vec![request])?;
        results.pop().unwrap_or(Ok(None))
    }

    /// APPENDs several messages, pipelined (fully with LITERAL+; otherwise
    /// each literal waits for its continuation while earlier completions
    /// arrive). Each gets its own result: a NO (OVERQUOTA, TRYCREATE) fails
    /// only that message.
    pub fn append_many(
        &mut self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Result<Option<AppendResult>>>> {
        self.pipeline(requests, Session::send_append, |s, tag| {
            match s.finish_append(tag) {
                Err(e) if !e.session_usable() => Err(e),
                other => Ok(other),
            }
        })
    }

    /// Starts an APPEND whose message of exactly `len` bytes (CRLF line
    /// endings) the caller streams with [`Session::write_literal`] and ends
    /// with [`Session::end_literal`]; returns the tag to hand to
    /// [`Session::finish_append`] later, so several APPENDs pipeline. With
    /// LITERAL+ nothing is awaited; otherwise the server's continuation is
    /// (and a NO instead of it, such as TRYCREATE, is returned here).
    pub fn begin_append(&mut self, header: &AppendHeader, len: u64) -> Result<String> {
        let flags: Vec<&str> = header
            .flags
            .iter()
            .map(String::as_str)
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let mut command = Command::new("APPEND")
            .string(header.mailbox.as_bytes())
            .raw(&format!("({})", flags.join(" ")));
        if let Some(date) = header.internal_date {
            command = command.raw(&format!("\"{}\"", ferry_core::date::format_imap_date(date)));
        }
        self.send(command.open_literal(len))
    }

    /// Waits for an APPEND's completion: where the message landed when the
    /// server reports APPENDUID (UIDPLUS), else `None`.
    pub fn finish_append(&mut self, tag: &str) -> Result<Option<AppendResult>> {
        let completion = self.wait(tag, &mut Some, &mut KeepInMemory)?;
        Ok(AppendResult::from_completion(&completion))
    }

    /// Sends one APPEND without waiting: its literal streamed from memory
    /// or from its reader.
    fn send_append(session: &mut Session, request: AppendRequest) -> Result<String> {
        let AppendRequest {
            mailbox,
            flags,
            internal_date,
            message,
        } = request;
        let header = AppendHeader {
            mailbox,
            flags,
            internal_date,
        };
        let tag = session.begin_append(&header, message.len())?;
        match message {
            LiteralData::Bytes(bytes) => session.write_literal(&bytes)?,
            LiteralData::Reader { len, reader } => session.copy_into_literal(len, reader)?,
        }
        session.end_literal()?;
        Ok(tag)
    }
}

/// The UID STORE commands of one change (several for many UIDs; none when
/// it has no flag to send).
fn store_commands(update: &FlagUpdate, condstore: bool) -> impl Iterator<Item = Command> + '_ {
    let flags: Vec<&str> = update
        .flags
        .iter()
        .map(String::as_str)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    let op = if update.add {
        "+FLAGS.SILENT"
    } else {
        "-FLAGS.SILENT"
    };
    let flag_list = format!("({})", flags.join(" "));
    let modseq = update.unchanged_since.filter(|_| condstore);
    let uids: &[u32] = if flags.is_empty() { &[] } else { &update.uids };
    uids.chunks(UIDS_PER_COMMAND).map(move |chunk| {
        let command = Command::new("UID STORE").raw(&uid_set(chunk));
        let command = match modseq {
            Some(modseq) => command.raw(&format!("(UNCHANGEDSINCE {modseq})")),
            None => command,
        };
        command.raw(op).raw(&flag_list)
    })
}

fn search_hits(untagged: Vec<Untagged>) -> Vec<u32> {
    untagged
        .into_iter()
        .flat_map(|u| match u {
            Untagged::Search(uids) => uids,
            _ => Vec::new(),
        })
        .collect()
}

/// Streams FETCH body literals into writers made on demand.
struct BodySink<'a, W> {
    open: &'a mut dyn FnMut(u64) -> io::Result<W>,
    current: Option<(W, u64)>,
    finished: VecDeque<(W, u64)>,
}

impl<W: Write> LiteralSink for BodySink<'_, W> {
    fn divert(&mut self, prefix: &[u8], len: u64) -> bool {
        let is_body = prefix.ends_with(b"BODY[] ")
            || prefix.ends_with(b"BODY[HEADER] ")
            || prefix.ends_with(b"RFC822 ");
        if !is_body || !prefix.starts_with(b"* ") {
            return false;
        }
        match (self.open)(len) {
            Ok(writer) => {
                self.current = Some((writer, 0));
                true
            }
            Err(e) => {
                tracing::warn!("cannot open a writer for a message body: {e}");
                false
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self.current.as_mut() {
            Some((writer, written)) => {
                *written += data.len() as u64;
                writer.write_all(data)
            }
            None => Err(io::Error::other("body bytes without a writer")),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some((mut writer, len)) = self.current.take() {
            writer.flush()?;
            self.finished.push_back((writer, len));
        }
        Ok(())
    }
}

/// Lets the framer and the FETCH handler share one [`BodySink`].
struct SharedSink<'s, 'a, W>(&'s RefCell<BodySink<'a, W>>);

impl<W: Write> LiteralSink for SharedSink<'_, '_, W> {
    fn divert(&mut self, prefix: &[u8], len: u64) -> bool {
        self.0.borrow_mut().divert(prefix, len)
    }
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().write(data)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.0.borrow_mut().finish()
    }
}

/// Hands a FETCH with its body to `done`: the diverted writer, or a new one
/// filled with the in-memory bytes of a small body.
fn deliver<W: Write>(
    sink: &mut BodySink<'_, W>,
    fetch: Fetch,
    done: &mut dyn FnMut(FetchedBody<W>) -> Result<()>,
) -> Result<()> {
    let io_err = |source| Error::Io {
        context: "writing a message body received from the server".into(),
        source,
    };
    let inline = fetch.body.clone().unwrap_or_default();
    let diverted = if inline.is_empty() {
        sink.finished.pop_front()
    } else {
        None
    };
    let (body, len) = match diverted {
        Some(diverted) => diverted,
        None => {
            let mut writer = (sink.open)(inline.len() as u64).map_err(io_err)?;
            writer.write_all(&inline).map_err(io_err)?;
            writer.flush().map_err(io_err)?;
            (writer, inline.len() as u64)
        }
    };
    done(FetchedBody {
        uid: fetch.uid.unwrap_or_default(),
        flags: fetch.flags.unwrap_or_default(),
        internal_date: fetch.internal_date,
        size: fetch.size,
        mod_seq: fetch.mod_seq,
        body,
        len,
    })
}

/// Adds one pipelined command's `outcome` to its `slot`: its part joins an
/// earlier success, its refusal replaces it, a lost connection ends all.
fn merge<T>(outcome: Result<T>, slot: &mut Result<T>, join: impl FnOnce(&mut T, T)) -> Result<()> {
    match (outcome, slot) {
        (Err(e), _) if !e.session_usable() => return Err(e),
        (Err(e), slot @ Ok(_)) => *slot = Err(e),
        (Ok(part), Ok(whole)) => join(whole, part),
        _ => {}
    }
    Ok(())
}
