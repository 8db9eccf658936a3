//! The intent journal: side effects recorded before they happen, completed
//! in the same transaction as the state they produce.
//!
//! The engine's cycle per batch (design.md, "Crash safety"):
//!
//! 1. [`State::record_intents`]: one durable transaction (one fsync)
//!    records every intent of the batch, with what is needed to find its
//!    result later (UIDNEXT before an APPEND, the Message-ID, the target
//!    file name).
//! 2. The side effects run, pipelined.
//! 3. [`State::complete_batch`]: one transaction marks each intent done
//!    *and* writes the pair change it produced, so the journal and the pairs
//!    never disagree. An intent whose effect failed is [`State::abandon`]ed.
//!
//! After a crash, [`State::pending_intents`] returns what was recorded but
//! not completed; the engine reconciles each (found: complete it; not found:
//! abandon it) before planning. Finished intents are kept for inspection
//! until [`State::prune_finished_intents`].

use crate::db::State;
use crate::error::{Result, StateError};
use crate::ids::{BatchId, FolderId, IntentId, PairId};
use crate::keys::MessageKey;
use crate::pairs::{Pair, PairChange, apply_change};
use crate::payload;
use crate::sql::{SqlContext, now_ms, side_from_text, side_text, write_tx};
use ferry_core::{Flags, Side};
use rusqlite::{Row, ToSql, Transaction, params};
use std::path::Path;

/// A side effect to journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntent {
    /// The side where the effect happens.
    pub side: Side,
    /// The folder pair where it happens (a move's source).
    pub folder: FolderId,
    /// The pair it concerns, when one exists already.
    pub pair: Option<PairId>,
    /// What happens.
    pub action: IntentAction,
}

/// A side effect, with what recovery needs to find out whether it
/// happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentAction {
    /// IMAP APPEND into the folder on the intent's side. `pair` is the pair
    /// to record once the message is there (its `folder` is the intent's);
    /// its key on that side is unknown until APPENDUID, or a search of
    /// UIDs from `uidnext_before` by Message-ID, size and date, finds it.
    Append {
        /// The pair to record, its key on the target side still `None`.
        pair: Pair,
        /// UIDNEXT of the target folder just before the APPEND.
        uidnext_before: Option<u32>,
    },
    /// Write a message file into the Maildir folder on the intent's side.
    /// `pair` is the pair to record (its `folder` is the intent's), with its
    /// key on that side the file's unique name, chosen before writing, so
    /// recovery finds the file by name.
    Deliver {
        /// The pair to record, its key on the target side the new file's.
        pair: Pair,
    },
    /// Move a message to another folder on the same side (IMAP UID MOVE or
    /// COPY, Maildir rename keeping the key).
    Move {
        /// The folder pair it moves into.
        to_folder: FolderId,
        /// Its key in the source folder.
        key: MessageKey,
        /// UIDNEXT of the target folder before the move (IMAP without
        /// COPYUID: where to search for it).
        to_uidnext_before: Option<u32>,
    },
    /// Remove a message for good (unlink, or `\Deleted` + UID EXPUNGE).
    Remove {
        /// Its key.
        key: MessageKey,
    },
    /// Add and remove flags.
    SetFlags {
        /// Its key.
        key: MessageKey,
        /// Flags to set.
        add: Flags,
        /// Flags to clear.
        remove: Flags,
    },
}

impl IntentAction {
    /// The stored name of the kind: `append`, `deliver`, `move`, `remove`
    /// or `set_flags`.
    pub fn kind(&self) -> &'static str {
        match self {
            IntentAction::Append { .. } => "append",
            IntentAction::Deliver { .. } => "deliver",
            IntentAction::Move { .. } => "move",
            IntentAction::Remove { .. } => "remove",
            IntentAction::SetFlags { .. } => "set_flags",
        }
    }

    fn to_folder(&self) -> Option<FolderId> {
        match self {
            IntentAction::Move { to_folder, .. } => Some(*to_folder),
            _ => None,
        }
    }
}

/// Where an intent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// Recorded; its effect may or may not have happened.
    Pending,
    /// Its effect happened and its pair change is recorded.
    Done,
    /// Its effect did not happen and will not be retried as such.
    Abandoned,
}

/// A journalled intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Its id.
    pub id: IntentId,
    /// The batch it was recorded in.
    pub batch: BatchId,
    /// The side where the effect happens.
    pub side: Side,
    /// The folder pair where it happens (a move's source).
    pub folder: FolderId,
    /// The pair it concerns (for a completed APPEND or delivery, the pair it
    /// produced); `None` once that pair was deleted.
    pub pair: Option<PairId>,
    /// What happens.
    pub action: IntentAction,
    /// Where it stands.
    pub state: IntentState,
    /// When its batch was recorded, in milliseconds since the epoch.
    pub created_ms: i64,
    /// When it was completed or abandoned.
    pub finished_ms: Option<i64>,
}

const INTENT_COLUMNS: &str = "i.id, i.batch, i.kind, i.side, i.folder, i.to_folder, i.pair, \
    i.payload, i.state, b.created_ms, i.finished_ms \
    FROM intents i JOIN batches b ON b.id = i.batch";

impl State {
    /// Records a batch of intents in one durable transaction (one fsync);
    /// returns their ids in order. Nothing may happen on a store before
    /// this returns.
    ///
    /// The engine's cycle per batch (design.md, "Crash safety"): record the
    /// batch's intents here, with what is needed to find each result later
    /// (UIDNEXT before an APPEND, the Message-ID, the target file name);
    /// run the side effects, pipelined; then [`State::complete_batch`]
    /// marks each intent done *and* writes the pair change it produced in
    /// one transaction, so journal and pairs never disagree. An intent whose
    /// effect failed is [`State::abandon`]ed. After a crash,
    /// [`State::pending_intents`] returns what was recorded but never
    /// completed, for the engine to reconcile before it plans.
    pub fn record_intents(&mut self, intents: &[NewIntent]) -> Result<Vec<IntentId>> {
        if intents.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let what = || format!("record {} intents", intents.len());
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        tx.execute("INSERT INTO batches (created_ms) VALUES (?1)", [now_ms()])
            .ctx_with(&path, what)?;
        let batch = tx.last_insert_rowid();
        let ids = intents
            .iter()
            .map(|intent| insert_intent(&tx, &path, batch, intent))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(ids)
    }

    /// Marks an intent done and applies the pair change it produced, in
    /// one transaction. Returns the pair inserted or touched.
    pub fn complete(&mut self, intent: IntentId, change: PairChange) -> Result<Option<PairId>> {
        let mut ids = self.complete_batch(&[(intent, change)])?;
        Ok(ids.pop().flatten())
    }

    /// Marks a batch of intents done and applies their pair changes, all in
    /// one transaction: all or none. Fails, changing nothing, if an intent
    /// is not pending.
    pub fn complete_batch(
        &mut self,
        completions: &[(IntentId, PairChange)],
    ) -> Result<Vec<Option<PairId>>> {
        let path = self.path.clone();
        let what = || format!("complete {} intents", completions.len());
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        let now = now_ms();
        let mut produced = Vec::with_capacity(completions.len());
        for (intent, change) in completions {
            let pair = apply_change(&tx, &path, change)?;
            let inserted = matches!(change, PairChange::Insert(_))
                .then_some(pair)
                .flatten();
            finish(&tx, &path, *intent, "done", now, inserted)?;
            produced.push(pair);
        }
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(produced)
    }

    /// Marks an intent abandoned: its effect did not happen (or is void).
    pub fn abandon(&mut self, intent: IntentId) -> Result<()> {
        self.abandon_batch(&[intent])
    }

    /// Marks several intents abandoned, in one transaction.
    pub fn abandon_batch(&mut self, intents: &[IntentId]) -> Result<()> {
        let path = self.path.clone();
        let what = || format!("abandon {} intents", intents.len());
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        let now = now_ms();
        for intent in intents {
            finish(&tx, &path, *intent, "abandoned", now, None)?;
        }
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(())
    }

    /// Every pending intent, oldest first: what a crashed run left to
    /// reconcile.
    pub fn pending_intents(&self) -> Result<Vec<Intent>> {
        let sql = format!("SELECT {INTENT_COLUMNS} WHERE i.state = 'pending' ORDER BY i.id");
        self.query_intents(&sql, &[], || "load the pending intents".into())
    }

    /// Every intent in the journal, pending or finished (until pruned),
    /// oldest first: for `ferry status -v` and diagnostics.
    pub fn intents(&self) -> Result<Vec<Intent>> {
        let sql = format!("SELECT {INTENT_COLUMNS} ORDER BY i.id");
        self.query_intents(&sql, &[], || "load the journal".into())
    }

    /// One intent, whatever its state; `None` once pruned.
    pub fn intent(&self, id: IntentId) -> Result<Option<Intent>> {
        let sql = format!("SELECT {INTENT_COLUMNS} WHERE i.id = ?1");
        Ok(self
            .query_intents(&sql, &[&id.0], || format!("load intent {id}"))?
            .pop())
    }

    /// Deletes every done or abandoned intent (and emptied batches);
    /// returns how many. The engine calls it after recovery, at the start
    /// of a run, so the last run's journal stays readable until then.
    pub fn prune_finished_intents(&mut self) -> Result<u64> {
        let path = self.path.clone();
        let what = "prune finished intents";
        let tx = write_tx(&mut self.conn).ctx(&path, what)?;
        let pruned = tx
            .execute("DELETE FROM intents WHERE state <> 'pending'", [])
            .ctx(&path, what)?;
        tx.execute(
            "DELETE FROM batches WHERE id NOT IN (SELECT batch FROM intents)",
            [],
        )
        .ctx(&path, what)?;
        tx.commit().ctx(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(pruned as u64)
    }

    fn query_intents(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        what: impl FnOnce() -> String,
    ) -> Result<Vec<Intent>> {
        let raws: Vec<RawIntent> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_map(params, RawIntent::read)?.collect())
            .ctx_with(&self.path, what)?;
        raws.into_iter()
            .map(|raw| raw.into_intent(&self.path))
            .collect()
    }
}

fn insert_intent(
    tx: &Transaction<'_>,
    path: &Path,
    batch: i64,
    intent: &NewIntent,
) -> Result<IntentId> {
    let invalid = |why: String| StateError::Invalid {
        path: path.to_path_buf(),
        what: format!(
            "{} intent in folder {}: {why}",
            intent.action.kind(),
            intent.folder
        ),
    };
    check_intent(intent).map_err(invalid)?;
    let payload = payload::encode(&intent.action).map_err(invalid)?;
    tx.prepare_cached(
        "INSERT INTO intents (batch, kind, side, folder, to_folder, pair, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.insert(params![
            batch,
            intent.action.kind(),
            side_text(intent.side),
            intent.folder.0,
            intent.action.to_folder().map(|f| f.0),
            intent.pair.map(|p| p.0),
            payload,
        ])
    })
    .map(IntentId)
    .ctx_with(path, || {
        format!(
            "record a {} intent in folder {}",
            intent.action.kind(),
            intent.folder
        )
    })
}

/// Refuses an intent whose recovery could not work.
fn check_intent(intent: &NewIntent) -> Result<(), String> {
    match &intent.action {
        IntentAction::Append { pair, .. } | IntentAction::Deliver { pair }
            if pair.folder != intent.folder =>
        {
            Err(format!("its pair is in folder {}", pair.folder))
        }
        IntentAction::Deliver { pair }
            if !matches!(pair.keys[intent.side], Some(MessageKey::Name(_))) =>
        {
            Err(format!("no target file name on the {} side", intent.side))
        }
        _ => Ok(()),
    }
}

/// Moves a pending intent to `state`; `NotPending` if it is not pending.
fn finish(
    tx: &Transaction<'_>,
    path: &Path,
    intent: IntentId,
    state: &str,
    now: i64,
    produced: Option<PairId>,
) -> Result<()> {
    let changed = tx
        .prepare_cached(
            "UPDATE intents SET state = ?1, finished_ms = ?2, pair = coalesce(?3, pair) \
             WHERE id = ?4 AND state = 'pending'",
        )
        .and_then(|mut stmt| stmt.execute(params![state, now, produced.map(|p| p.0), intent.0]))
        .ctx_with(path, || format!("mark intent {intent} {state}"))?;
    if changed == 0 {
        return Err(StateError::NotPending {
            path: path.to_path_buf(),
            intent,
        });
    }
    Ok(())
}

/// An intent row as SQLite returns it, before validation.
struct RawIntent {
    id: i64,
    batch: i64,
    kind: String,
    side: String,
    folder: i64,
    to_folder: Option<i64>,
    pair: Option<i64>,
    payload: String,
    state: String,
    created_ms: i64,
    finished_ms: Option<i64>,
}

impl RawIntent {
    fn read(row: &Row<'_>) -> rusqlite::Result<RawIntent> {
        Ok(RawIntent {
            id: row.get(0)?,
            batch: row.get(1)?,
            kind: row.get(2)?,
            side: row.get(3)?,
            folder: row.get(4)?,
            to_folder: row.get(5)?,
            pair: row.get(6)?,
            payload: row.get(7)?,
            state: row.get(8)?,
            created_ms: row.get(9)?,
            finished_ms: row.get(10)?,
        })
    }

    fn into_intent(self, path: &Path) -> Result<Intent> {
        let id = IntentId(self.id);
        self.decode(id).map_err(|why| StateError::Corrupt {
            path: path.to_path_buf(),
            what: format!("intent {id}: {why}"),
        })
    }

    fn decode(self, id: IntentId) -> Result<Intent, String> {
        let folder = FolderId(self.folder);
        let to_folder = self.to_folder.map(FolderId);
        let action = payload::decode(&self.kind, &self.payload, folder, to_folder)?;
        let side = side_from_text(&self.side).ok_or_else(|| format!("side {:?}", self.side))?;
        let state = match self.state.as_str() {
            "pending" => IntentState::Pending,
            "done" => IntentState::Done,
            "abandoned" => IntentState::Abandoned,
            other => return Err(format!("state {other:?}")),
        };
        Ok(Intent {
            id,
            batch: BatchId(self.batch),
            side,
            folder,
            pair: self.pair.map(PairId),
            action,
            state,
            created_ms: self.created_ms,
            finished_ms: self.finished_ms,
        })
    }
}
