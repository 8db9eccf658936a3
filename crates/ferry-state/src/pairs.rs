//! Message pairs: each message as it was when last synced, with its key on
//! each side.
//!
//! The planner's third input (design.md, "One sync run" step 5): a message
//! on one side without a pair is new; a pair whose message is gone on one
//! side was deleted there; flags are merged against the pair's flags.
//! Writes come in batches, one transaction each ([`State::apply_pair_changes`],
//! or [`State::complete_batch`] together with the intents they finish).

use crate::codec::{flags_from_columns, flags_to_columns, key_from_columns, key_to_columns};
use crate::db::State;
use crate::error::{Result, StateError};
use crate::ids::{FolderId, PairId};
use crate::keys::{Fingerprint, MessageKey};
use crate::sql::{SqlContext, side_from_text, side_text, write_tx};
use ferry_core::{Flags, PerSide, Side};
use rusqlite::{Row, ToSql, Transaction};
use std::path::Path;

/// A message pair: what ferry knows of one message of a folder pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The folder pair it belongs to.
    pub folder: FolderId,
    /// Its key on each side; `None` where not (or no longer) known.
    pub keys: PerSide<Option<MessageKey>>,
    /// The store's own id for the message on each side (RFC 8474 EMAILID),
    /// which survives moves between folders.
    pub email_ids: PerSide<Option<String>>,
    /// The flags last synced, keywords included (a Maildir name cannot hold
    /// keywords, so they live only here and on the server).
    pub flags: Flags,
    /// Size in octets with CRLF line endings.
    pub size: Option<u64>,
    /// INTERNALDATE (the file's mtime), in seconds since the epoch.
    pub internal_date: Option<i64>,
    /// The Message-ID header, as found.
    pub message_id: Option<String>,
    /// The content fingerprint.
    pub fingerprint: Option<Fingerprint>,
    /// The side where ferry removed the message but could only mark it
    /// `\Deleted` (no UIDPLUS): it must never be copied back from there.
    pub awaiting_expunge: Option<Side>,
}

impl Pair {
    /// A pair in `folder` with no key, flag or detail yet.
    pub fn new(folder: FolderId) -> Pair {
        Pair {
            folder,
            keys: PerSide::default(),
            email_ids: PerSide::default(),
            flags: Flags::new(),
            size: None,
            internal_date: None,
            message_id: None,
            fingerprint: None,
            awaiting_expunge: None,
        }
    }

    /// A short description for error messages: folder and keys.
    pub fn describe(&self) -> String {
        let key = |key: &Option<MessageKey>| key.as_ref().map_or("-".into(), |k| k.to_string());
        format!(
            "pair in folder {} (far {}, near {})",
            self.folder,
            key(&self.keys.far),
            key(&self.keys.near)
        )
    }
}

/// A pair as stored, with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPair {
    /// Its stable id.
    pub id: PairId,
    /// Its content.
    pub pair: Pair,
}

/// One change to the pairs, applied in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairChange {
    /// Record a new pair.
    Insert(Pair),
    /// Replace a stored pair's content (flags synced, a key learned, moved
    /// to another folder pair: set `pair.folder`).
    Update(StoredPair),
    /// Forget a pair (the message is gone from both sides).
    Delete(PairId),
    /// No pair changes (an intent that produced nothing to remember).
    Nothing,
}

const PAIR_COLUMNS: &str = "id, folder, far_uid, far_key, near_uid, near_key, \
    far_email_id, near_email_id, flags, keywords, size, internal_date, message_id, \
    fingerprint, awaiting_expunge";

const INSERT_PAIR: &str = "INSERT INTO pairs (folder, far_uid, far_key, near_uid, near_key, \
    far_email_id, near_email_id, flags, keywords, size, internal_date, message_id, \
    fingerprint, awaiting_expunge) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const UPDATE_PAIR: &str = "UPDATE pairs SET folder = ?1, far_uid = ?2, far_key = ?3, \
    near_uid = ?4, near_key = ?5, far_email_id = ?6, near_email_id = ?7, flags = ?8, \
    keywords = ?9, size = ?10, internal_date = ?11, message_id = ?12, fingerprint = ?13, \
    awaiting_expunge = ?14 WHERE id = ?15";

/// [`UPDATE_PAIR`] for a pair whose indexed columns (folder, keys,
/// Message-ID, fingerprint) are unchanged, which is the common case (flags
/// synced): the row alone is written, not its seven index entries. It
/// changes nothing when an indexed column differs; the full update follows.
const UPDATE_PAIR_UNINDEXED: &str = "UPDATE pairs SET far_email_id = ?6, near_email_id = ?7, \
    flags = ?8, keywords = ?9, size = ?10, internal_date = ?11, awaiting_expunge = ?14 \
    WHERE id = ?15 AND folder IS ?1 AND far_uid IS ?2 AND far_key IS ?3 AND near_uid IS ?4 \
    AND near_key IS ?5 AND message_id IS ?12 AND fingerprint IS ?13";

impl State {
    /// Every pair of a folder pair, by id. One indexed scan: 100,000 pairs
    /// load in a fraction of a second.
    pub fn load_pairs(&self, folder: FolderId) -> Result<Vec<StoredPair>> {
        let sql = format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE folder = ?1 ORDER BY id");
        self.query_pairs(&sql, &[&folder.0], || {
            format!("load the pairs of folder {folder}")
        })
    }

    /// The key and the flags of every pair of a folder that has a key on a
    /// side, for each side `sides` asks for (empty for the others), read in
    /// one pass: what a run compares a listing with, read without the rest
    /// of each pair (about a third of the cost of [`State::load_pairs`]). A
    /// pair awaiting expunge on a side was last seen there marked
    /// `\Deleted`, and has that flag there.
    pub fn load_keys_and_flags(
        &self,
        folder: FolderId,
        sides: PerSide<bool>,
    ) -> Result<PerSide<Vec<(MessageKey, Flags)>>> {
        let mut out = PerSide::<Vec<(MessageKey, Flags)>>::default();
        let columns = "SELECT far_uid, far_key, near_uid, near_key, flags, keywords, \
                       awaiting_expunge FROM pairs WHERE folder = ?1";
        // Only pairs with a key on a side asked for: damage elsewhere does
        // not stop the folder.
        let (wanted, has_key): (&[Side], &str) = match (sides.far, sides.near) {
            (false, false) => return Ok(out),
            (true, false) => (&[Side::Far], "far_uid IS NOT NULL OR far_key IS NOT NULL"),
            (false, true) => (
                &[Side::Near],
                "near_uid IS NOT NULL OR near_key IS NOT NULL",
            ),
            (true, true) => (
                &Side::BOTH,
                "far_uid IS NOT NULL OR far_key IS NOT NULL \
                 OR near_uid IS NOT NULL OR near_key IS NOT NULL",
            ),
        };
        let sql = format!("{columns} AND ({has_key})");
        let what = || {
            format!(
                "load the {} keys and flags of folder {folder}",
                sides_text(wanted)
            )
        };
        let mut stmt = self.conn.prepare_cached(&sql).ctx_with(&self.path, what)?;
        let mut rows = stmt.query([folder.0]).ctx_with(&self.path, what)?;
        while let Some(row) = rows.next().ctx_with(&self.path, what)? {
            let corrupt = |why: String| StateError::Corrupt {
                path: self.path.clone(),
                what: format!("a pair of folder {folder}: {why}"),
            };
            (push_keys_and_flags(row, wanted, &mut out).ctx_with(&self.path, what)?)
                .map_err(corrupt)?;
        }
        Ok(out)
    }

    /// One pair by id.
    pub fn pair(&self, id: PairId) -> Result<Option<StoredPair>> {
        let sql = format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE id = ?1");
        Ok(self
            .query_pairs(&sql, &[&id.0], || format!("load pair {id}"))?
            .pop())
    }

    /// The pair of `folder` whose key on `side` is `key`.
    pub fn find_pair(
        &self,
        folder: FolderId,
        side: Side,
        key: &MessageKey,
    ) -> Result<Option<StoredPair>> {
        let s = side_text(side);
        let what = || format!("find the pair of {side} {key} in folder {folder}");
        let found = match key {
            MessageKey::Uid(uid) => {
                let sql =
                    format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE folder = ?1 AND {s}_uid = ?2");
                self.query_pairs(&sql, &[&folder.0, &uid.get()], what)
            }
            MessageKey::Name(name) => {
                let sql =
                    format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE folder = ?1 AND {s}_key = ?2");
                self.query_pairs(&sql, &[&folder.0, name], what)
            }
        };
        Ok(found?.pop())
    }

    /// Every pair, in any folder, with this fingerprint (for re-pairing
    /// after a UIDVALIDITY change and for moves across folders).
    pub fn find_pairs_by_fingerprint(&self, fingerprint: &Fingerprint) -> Result<Vec<StoredPair>> {
        let sql = format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE fingerprint = ?1 ORDER BY id");
        self.query_pairs(&sql, &[&fingerprint.to_hex()], || {
            format!("find pairs with fingerprint {fingerprint}")
        })
    }

    /// Every pair, in any folder, with this Message-ID.
    pub fn find_pairs_by_message_id(&self, message_id: &str) -> Result<Vec<StoredPair>> {
        let sql = format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE message_id = ?1 ORDER BY id");
        self.query_pairs(&sql, &[&message_id], || {
            format!("find pairs with Message-ID {message_id:?}")
        })
    }

    /// Records new pairs in one transaction; returns their ids in order.
    pub fn insert_pairs(&mut self, pairs: &[Pair]) -> Result<Vec<PairId>> {
        let path = self.path.clone();
        let what = || format!("record {} pairs", pairs.len());
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        let ids = pairs
            .iter()
            .map(|pair| insert_pair(&tx, &path, pair))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(ids)
    }

    /// Applies a batch of pair changes in one transaction: all or none.
    /// Returns, per change, the pair it inserted or touched.
    pub fn apply_pair_changes(&mut self, changes: &[PairChange]) -> Result<Vec<Option<PairId>>> {
        let path = self.path.clone();
        let what = || format!("apply {} pair changes", changes.len());
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        let ids = changes
            .iter()
            .map(|change| apply_change(&tx, &path, change))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(ids)
    }

    fn query_pairs(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        what: impl Fn() -> String,
    ) -> Result<Vec<StoredPair>> {
        // Each row is decoded as it is read: no second vector of raw rows.
        let mut stmt = self.conn.prepare_cached(sql).ctx_with(&self.path, &what)?;
        let mut rows = stmt.query(params).ctx_with(&self.path, &what)?;
        let mut pairs = Vec::new();
        loop {
            match rows
                .next()
                .and_then(|row| row.map(RawPair::read).transpose())
            {
                Ok(Some(raw)) => pairs.push(raw.into_pair(&self.path)?),
                Ok(None) => return Ok(pairs),
                Err(e) => return Err(e).ctx_with(&self.path, &what),
            }
        }
    }
}

/// Applies one change inside a caller's transaction.
pub(crate) fn apply_change(
    tx: &Transaction<'_>,
    path: &Path,
    change: &PairChange,
) -> Result<Option<PairId>> {
    match change {
        PairChange::Insert(pair) => insert_pair(tx, path, pair).map(Some),
        PairChange::Update(stored) => update_pair(tx, path, stored).map(Some),
        PairChange::Delete(id) => delete_pair(tx, path, *id).map(Some),
        PairChange::Nothing => Ok(None),
    }
}

fn insert_pair(tx: &Transaction<'_>, path: &Path, pair: &Pair) -> Result<PairId> {
    let columns = PairColumns::new(pair, path)?;
    tx.prepare_cached(INSERT_PAIR)
        .and_then(|mut stmt| stmt.insert(columns.params().as_slice()))
        .map(PairId)
        .ctx_with(path, || format!("record {}", pair.describe()))
}

fn update_pair(tx: &Transaction<'_>, path: &Path, stored: &StoredPair) -> Result<PairId> {
    let columns = PairColumns::new(&stored.pair, path)?;
    let mut params = columns.params();
    params.push(&stored.id.0);
    let describe = || format!("update {} {}", stored.id, stored.pair.describe());
    let narrow = tx
        .prepare_cached(UPDATE_PAIR_UNINDEXED)
        .and_then(|mut stmt| stmt.execute(params.as_slice()))
        .ctx_with(path, describe)?;
    if narrow == 1 {
        return Ok(stored.id);
    }
    let changed = tx
        .prepare_cached(UPDATE_PAIR)
        .and_then(|mut stmt| stmt.execute(params.as_slice()))
        .ctx_with(path, describe)?;
    expect_pair(changed, path, stored.id)
}

fn delete_pair(tx: &Transaction<'_>, path: &Path, id: PairId) -> Result<PairId> {
    let changed = tx
        .prepare_cached("DELETE FROM pairs WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id.0]))
        .ctx_with(path, || format!("delete pair {id}"))?;
    expect_pair(changed, path, id)
}

fn expect_pair(changed: usize, path: &Path, id: PairId) -> Result<PairId> {
    if changed == 0 {
        return Err(StateError::NoSuchPair {
            path: path.to_path_buf(),
            pair: id,
        });
    }
    Ok(id)
}

/// A pair's column values, encoded and checked.
struct PairColumns<'a> {
    pair: &'a Pair,
    far: (Option<u32>, Option<&'a str>),
    near: (Option<u32>, Option<&'a str>),
    flags: String,
    keywords: Option<String>,
    size: Option<i64>,
    fingerprint: Option<String>,
    awaiting_expunge: Option<&'static str>,
}

impl<'a> PairColumns<'a> {
    fn new(pair: &'a Pair, path: &Path) -> Result<PairColumns<'a>> {
        let invalid = |why: String| StateError::Invalid {
            path: path.to_path_buf(),
            what: format!("{}: {why}", pair.describe()),
        };
        let (flags, keywords) = flags_to_columns(&pair.flags).map_err(invalid)?;
        let size = pair
            .size
            .map(|size| i64::try_from(size).map_err(|_| invalid(format!("size {size}"))))
            .transpose()?;
        Ok(PairColumns {
            pair,
            far: key_to_columns(pair.keys.far.as_ref()),
            near: key_to_columns(pair.keys.near.as_ref()),
            flags,
            keywords,
            size,
            fingerprint: pair.fingerprint.as_ref().map(Fingerprint::to_hex),
            awaiting_expunge: pair.awaiting_expunge.map(side_text),
        })
    }

    /// Parameters ?1 to ?14 of [`INSERT_PAIR`] and [`UPDATE_PAIR`].
    fn params(&self) -> Vec<&dyn ToSql> {
        let pair = self.pair;
        vec![
            &pair.folder.0,
            &self.far.0,
            &self.far.1,
            &self.near.0,
            &self.near.1,
            &pair.email_ids.far,
            &pair.email_ids.near,
            &self.flags,
            &self.keywords,
            &self.size,
            &pair.internal_date,
            &pair.message_id,
            &self.fingerprint,
            &self.awaiting_expunge,
        ]
    }
}

/// A pair row as SQLite returns it, before validation.
struct RawPair {
    id: i64,
    folder: i64,
    uids: PerSide<Option<i64>>,
    names: PerSide<Option<String>>,
    email_ids: PerSide<Option<String>>,
    /// Decoded from the borrowed columns (no copy of the text).
    flags: Result<Flags, String>,
    size: Option<i64>,
    internal_date: Option<i64>,
    message_id: Option<String>,
    /// Decoded from the borrowed hex text.
    fingerprint: Option<Result<Fingerprint, String>>,
    awaiting_expunge: Option<String>,
}

impl RawPair {
    fn read(row: &Row<'_>) -> rusqlite::Result<RawPair> {
        Ok(RawPair {
            id: row.get(0)?,
            folder: row.get(1)?,
            uids: PerSide::new(row.get(2)?, row.get(4)?),
            names: PerSide::new(row.get(3)?, row.get(5)?),
            email_ids: PerSide::new(row.get(6)?, row.get(7)?),
            flags: flags_from_columns(row.get_ref(8)?.as_str()?, row.get_ref(9)?.as_str_or_null()?),
            size: row.get(10)?,
            internal_date: row.get(11)?,
            message_id: row.get(12)?,
            fingerprint: (row.get_ref(13)?.as_str_or_null()?).map(|hex| {
                Fingerprint::from_hex(hex).ok_or_else(|| format!("fingerprint {hex:?}"))
            }),
            awaiting_expunge: row.get(14)?,
        })
    }

    fn into_pair(self, path: &Path) -> Result<StoredPair> {
        let id = PairId(self.id);
        self.decode(id).map_err(|why| StateError::Corrupt {
            path: path.to_path_buf(),
            what: format!("pair {id}: {why}"),
        })
    }

    fn decode(self, id: PairId) -> Result<StoredPair, String> {
        let [far_name, near_name] = [self.names.far, self.names.near];
        let keys = PerSide::new(
            key_from_columns(self.uids.far, far_name).map_err(|e| format!("far key: {e}"))?,
            key_from_columns(self.uids.near, near_name).map_err(|e| format!("near key: {e}"))?,
        );
        let size = self
            .size
            .map(|s| u64::try_from(s).map_err(|_| format!("size {s}")))
            .transpose()?;
        let fingerprint = self.fingerprint.transpose()?;
        let awaiting_expunge = self
            .awaiting_expunge
            .map(|s| side_from_text(&s).ok_or_else(|| format!("awaiting_expunge {s:?}")))
            .transpose()?;
        let pair = Pair {
            folder: FolderId(self.folder),
            keys,
            email_ids: self.email_ids,
            flags: self.flags?,
            size,
            internal_date: self.internal_date,
            message_id: self.message_id,
            fingerprint,
            awaiting_expunge,
        };
        Ok(StoredPair { id, pair })
    }
}

/// "far", "near" or "far and near".
fn sides_text(sides: &[Side]) -> String {
    let names: Vec<&str> = sides.iter().map(|s| side_text(*s)).collect();
    names.join(" and ")
}

/// Pushes the key and flags on each of `sides` of the pair in `row`
/// (columns far_uid, far_key, near_uid, near_key, flags, keywords,
/// awaiting_expunge) onto `out`: a side where the pair has no key gets
/// nothing, and a side the pair awaits expunge on gets `\Deleted`. The
/// outer error is SQLite's, the inner one names what is corrupt.
fn push_keys_and_flags(
    row: &Row<'_>,
    sides: &[Side],
    out: &mut PerSide<Vec<(MessageKey, Flags)>>,
) -> rusqlite::Result<std::result::Result<(), String>> {
    let mut keys: PerSide<Option<std::result::Result<Option<MessageKey>, String>>> =
        PerSide::default();
    for &side in sides {
        let at = if side == Side::Far { 0 } else { 2 };
        let uid: Option<i64> = row.get(at)?;
        let name = row.get_ref(at + 1)?.as_str_or_null()?;
        keys[side] = Some(key_from_columns(uid, name.map(Box::from)));
    }
    let flags = flags_from_columns(row.get_ref(4)?.as_str()?, row.get_ref(5)?.as_str_or_null()?);
    let awaiting = row.get_ref(6)?.as_str_or_null()?.map(side_from_text);
    let mut push = || {
        for side in Side::BOTH {
            let Some(key) = keys[side].take().transpose()?.flatten() else {
                continue;
            };
            let mut flags = flags.clone()?;
            if awaiting == Some(Some(side)) {
                flags.insert(ferry_core::Flag::Deleted);
            }
            out[side].push((key, flags));
        }
        Ok(())
    };
    Ok(push())
}
