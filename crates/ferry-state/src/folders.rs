//! Folder pairs: one folder on each side, with what the last completed sync
//! saw of each.
//!
//! A folder's identity on a side is its name and, for IMAP, its
//! UIDVALIDITY (and MAILBOXID where offered). UIDVALIDITY is kept apart from
//! the other markers: it changes only through [`State::observe_validity`] or
//! [`State::reset_uids`], which void the side's UIDs in the same
//! transaction, so no UID is ever read against the wrong incarnation. The
//! other markers (UIDNEXT, HIGHESTMODSEQ, directory time stamps) are written only
//! by [`State::commit_folder_sync`], once the folder's sync has completed.

use crate::db::State;
use crate::error::{Result, StateError};
use crate::ids::FolderId;
use crate::sql::{SqlContext, now_ms, side_text, write_tx};
use ferry_core::{PerSide, Side, UidValidity};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::Path;

/// The time stamps of a Maildir folder's `new/` and `cur/` that prove it
/// unchanged, in nanoseconds since the epoch: the shape of ferry-maildir's
/// `DirTimes` (which holds the directories' ctimes, from a stable listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirTimes {
    /// `new/`.
    pub new_ns: i64,
    /// `cur/`.
    pub cur_ns: i64,
}

/// What one side of a folder looked like when its last sync completed.
///
/// An IMAP side fills the first three, a Maildir side only `dir_times`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SideMarkers {
    /// UIDNEXT.
    pub uidnext: Option<u32>,
    /// HIGHESTMODSEQ; `None` without CONDSTORE or after NOMODSEQ.
    pub highest_modseq: Option<u64>,
    /// MAILBOXID (RFC 8474).
    pub mailbox_id: Option<String>,
    /// The directory time stamps of a Maildir folder.
    pub dir_times: Option<DirTimes>,
}

/// A folder pair as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Its stable id.
    pub id: FolderId,
    /// Far: the server's wire name. Near: the path relative to the Maildir
    /// root (or a wire name, for `migrate`).
    pub names: PerSide<String>,
    /// The UIDVALIDITY every stored UID of the side belongs to.
    pub validity: PerSide<Option<UidValidity>>,
    /// What the last completed sync saw.
    pub markers: PerSide<SideMarkers>,
    /// When the last sync of this folder completed, in milliseconds since
    /// the epoch; `None` before the first.
    pub last_sync_ms: Option<i64>,
}

/// What [`State::observe_validity`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityCheck {
    /// The stored UIDVALIDITY is the one observed.
    Unchanged,
    /// None was stored; the observed one is now.
    Adopted,
    /// It changed (or none was stored, yet the side had UIDs, whose
    /// incarnation is then unknown): the side's UIDs were forgotten, and
    /// UIDNEXT and HIGHESTMODSEQ with them. Re-pair by fingerprint.
    Changed {
        /// How many pairs lost their UID on that side.
        forgotten: u64,
    },
}

const FOLDER_COLUMNS: &str = "id, \
    far_name, far_validity, far_uidnext, far_modseq, far_mailbox_id, \
    far_new_time_ns, far_cur_time_ns, \
    near_name, near_validity, near_uidnext, near_modseq, near_mailbox_id, \
    near_new_time_ns, near_cur_time_ns, \
    last_sync_ms";

/// Columns per side in [`FOLDER_COLUMNS`], after the id.
const SIDE_WIDTH: usize = 7;

impl State {
    /// Adds a folder pair with these names; neither may be in use.
    pub fn add_folder(&mut self, names: &PerSide<String>) -> Result<FolderId> {
        let what = || format!("add folder pair {:?} <-> {:?}", names.far, names.near);
        self.conn
            .execute(
                "INSERT INTO folders (far_name, near_name) VALUES (?1, ?2)",
                params![names.far, names.near],
            )
            .ctx_with(&self.path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(FolderId(self.conn.last_insert_rowid()))
    }

    /// Every folder pair, by id.
    pub fn folders(&self) -> Result<Vec<Folder>> {
        load_folders(&self.conn, &self.path)
    }

    /// One folder pair.
    pub fn folder(&self, id: FolderId) -> Result<Folder> {
        let sql = format!("SELECT {FOLDER_COLUMNS} FROM folders WHERE id = ?1");
        let raw = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([id.0], RawFolder::read).optional())
            .ctx_with(&self.path, || format!("load folder pair {id}"))?;
        match raw {
            Some(raw) => raw.into_folder(&self.path),
            None => Err(self.no_folder(id)),
        }
    }

    /// The folder pair whose name on `side` is `name`.
    pub fn find_folder(&self, side: Side, name: &str) -> Result<Option<Folder>> {
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM folders WHERE {}_name = ?1",
            side_text(side)
        );
        let raw = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([name], RawFolder::read).optional())
            .ctx_with(&self.path, || format!("find the {side} folder {name:?}"))?;
        raw.map(|raw| raw.into_folder(&self.path)).transpose()
    }

    /// Renames a folder pair on one side (the folder was renamed there, or
    /// is being renamed to follow the other side).
    pub fn rename_folder(&mut self, id: FolderId, side: Side, name: &str) -> Result<()> {
        let sql = format!(
            "UPDATE folders SET {}_name = ?1 WHERE id = ?2",
            side_text(side)
        );
        let changed = self
            .conn
            .execute(&sql, params![name, id.0])
            .ctx_with(&self.path, || {
                format!("rename folder pair {id} to {name:?} ({side})")
            })?;
        ferry_core::crashpoint::step("state");
        self.expect_folder_row(changed, id)
    }

    /// Renames a folder pair on both sides at once (one statement: a crash
    /// never leaves the two names apart).
    pub fn rename_folder_pair(&mut self, id: FolderId, names: &PerSide<String>) -> Result<()> {
        let changed = self
            .conn
            .execute(
                "UPDATE folders SET far_name = ?1, near_name = ?2 WHERE id = ?3",
                params![names.far, names.near, id.0],
            )
            .ctx_with(&self.path, || {
                format!(
                    "rename folder pair {id} to {:?} <-> {:?}",
                    names.far, names.near
                )
            })?;
        ferry_core::crashpoint::step("state");
        self.expect_folder_row(changed, id)
    }

    /// Deletes a folder pair with its message pairs and finished intents.
    /// Refused while an intent on it is pending.
    pub fn delete_folder(&mut self, id: FolderId) -> Result<()> {
        let path = self.path.clone();
        let what = || format!("delete folder pair {id}");
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        let pending: u64 = tx
            .query_row(
                "SELECT count(*) FROM intents \
                 WHERE state = 'pending' AND (folder = ?1 OR to_folder = ?1)",
                [id.0],
                |row| row.get(0),
            )
            .ctx_with(&path, what)?;
        if pending > 0 {
            return Err(StateError::FolderBusy {
                path,
                folder: id,
                pending,
            });
        }
        tx.execute(
            "DELETE FROM intents WHERE folder = ?1 OR to_folder = ?1",
            [id.0],
        )
        .ctx_with(&path, what)?;
        let changed = tx
            .execute("DELETE FROM folders WHERE id = ?1", [id.0])
            .ctx_with(&path, what)?;
        expect_row(changed, &path, id)?;
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(())
    }

    /// Records that the folder's sync completed with these markers (and
    /// the time). HIGHESTMODSEQ must be stored only here: a marker saved
    /// before the end would hide changes not yet synced.
    pub fn commit_folder_sync(
        &mut self,
        id: FolderId,
        markers: &PerSide<SideMarkers>,
    ) -> Result<()> {
        let modseq = |side: Side| self.modseq_value(id, side, markers[side].highest_modseq);
        let (far_modseq, near_modseq) = (modseq(Side::Far)?, modseq(Side::Near)?);
        let times = markers.as_ref().map(|_, m| m.dir_times);
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE folders SET \
                 far_uidnext = ?1, far_modseq = ?2, far_mailbox_id = ?3, \
                 far_new_time_ns = ?4, far_cur_time_ns = ?5, \
                 near_uidnext = ?6, near_modseq = ?7, near_mailbox_id = ?8, \
                 near_new_time_ns = ?9, near_cur_time_ns = ?10, \
                 last_sync_ms = ?11 WHERE id = ?12",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    markers.far.uidnext,
                    far_modseq,
                    markers.far.mailbox_id,
                    times.far.map(|m| m.new_ns),
                    times.far.map(|m| m.cur_ns),
                    markers.near.uidnext,
                    near_modseq,
                    markers.near.mailbox_id,
                    times.near.map(|m| m.new_ns),
                    times.near.map(|m| m.cur_ns),
                    now_ms(),
                    id.0,
                ])
            })
            .ctx_with(&self.path, || {
                format!("commit the sync of folder pair {id}")
            })?;
        self.expect_folder_row(changed, id)
    }

    /// Records that these folders were found unchanged just now (their
    /// markers stay as they are), in one transaction.
    pub fn confirm_folders(&mut self, ids: &[FolderId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let what = || format!("record {} unchanged folders as synced", ids.len());
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE folders SET last_sync_ms = ?1 WHERE id = ?2")
                .ctx_with(&path, what)?;
            let now = now_ms();
            for id in ids {
                stmt.execute(params![now, id.0]).ctx_with(&path, what)?;
            }
        }
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(())
    }

    /// Compares the UIDVALIDITY just seen on `side` with the stored one:
    /// adopts it when none was stored, and on a change forgets the side's
    /// UIDs (see [`State::reset_uids`]). Call it before any pair of the
    /// folder is read or written.
    pub fn observe_validity(
        &mut self,
        id: FolderId,
        side: Side,
        validity: UidValidity,
    ) -> Result<ValidityCheck> {
        match self.folder(id)?.validity[side] {
            Some(stored) if stored == validity => Ok(ValidityCheck::Unchanged),
            None => match self.reset_uids(id, side, Some(validity))? {
                0 => Ok(ValidityCheck::Adopted),
                forgotten => Ok(ValidityCheck::Changed { forgotten }),
            },
            Some(_) => {
                let forgotten = self.reset_uids(id, side, Some(validity))?;
                Ok(ValidityCheck::Changed { forgotten })
            }
        }
    }

    /// Forgets every UID of the folder's pairs on `side`, and the side's
    /// UIDNEXT and HIGHESTMODSEQ, and stores `validity` as the side's new
    /// UIDVALIDITY, in one transaction. Maildir keys, flags, fingerprints
    /// and Message-IDs stay, so the engine can re-pair by content without
    /// downloading or deleting anything. Returns how many pairs lost a UID.
    ///
    /// Pending intents are left alone: those that name a UID of this side
    /// are void, and the engine abandons them (uploads stay; RFC 4549 4.1).
    pub fn reset_uids(
        &mut self,
        id: FolderId,
        side: Side,
        validity: Option<UidValidity>,
    ) -> Result<u64> {
        let path = self.path.clone();
        let what = || format!("forget the {side} UIDs of folder pair {id}");
        let s = side_text(side);
        let tx = write_tx(&mut self.conn).ctx_with(&path, what)?;
        let changed = tx
            .execute(
                &format!(
                    "UPDATE folders SET {s}_validity = ?1, {s}_uidnext = NULL, \
                     {s}_modseq = NULL WHERE id = ?2"
                ),
                params![validity.map(UidValidity::get), id.0],
            )
            .ctx_with(&path, what)?;
        expect_row(changed, &path, id)?;
        let forgotten = tx
            .execute(
                &format!(
                    "UPDATE pairs SET {s}_uid = NULL WHERE folder = ?1 AND {s}_uid IS NOT NULL"
                ),
                [id.0],
            )
            .ctx_with(&path, what)?;
        tx.commit().ctx_with(&path, what)?;
        ferry_core::crashpoint::step("state");
        Ok(forgotten as u64)
    }

    fn modseq_value(&self, id: FolderId, side: Side, modseq: Option<u64>) -> Result<Option<i64>> {
        modseq
            .map(|m| {
                i64::try_from(m).map_err(|_| StateError::Invalid {
                    path: self.path.clone(),
                    what: format!(
                        "{side} HIGHESTMODSEQ {m} of folder pair {id}: above 2^63-1, the RFC 7162 limit"
                    ),
                })
            })
            .transpose()
    }

    pub(crate) fn no_folder(&self, id: FolderId) -> StateError {
        StateError::NoSuchFolder {
            path: self.path.clone(),
            folder: id,
        }
    }

    fn expect_folder_row(&self, changed: usize, id: FolderId) -> Result<()> {
        expect_row(changed, &self.path, id)
    }
}

/// An error unless a statement on folder `id` changed a row.
fn expect_row(changed: usize, path: &Path, id: FolderId) -> Result<()> {
    if changed == 0 {
        return Err(StateError::NoSuchFolder {
            path: path.to_path_buf(),
            folder: id,
        });
    }
    Ok(())
}

/// Every folder pair, by id.
pub(crate) fn load_folders(conn: &Connection, path: &Path) -> Result<Vec<Folder>> {
    let sql = format!("SELECT {FOLDER_COLUMNS} FROM folders ORDER BY id");
    let raws: Vec<RawFolder> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_map([], RawFolder::read)?.collect())
        .ctx(path, "load the folder pairs")?;
    raws.into_iter().map(|raw| raw.into_folder(path)).collect()
}

/// A folder row as SQLite returns it, before validation.
struct RawFolder {
    id: i64,
    sides: PerSide<RawSide>,
    last_sync_ms: Option<i64>,
}

struct RawSide {
    name: String,
    validity: Option<i64>,
    uidnext: Option<i64>,
    modseq: Option<i64>,
    mailbox_id: Option<String>,
    new_ns: Option<i64>,
    cur_ns: Option<i64>,
}

impl RawFolder {
    fn read(row: &Row<'_>) -> rusqlite::Result<RawFolder> {
        let side = |at: usize| -> rusqlite::Result<RawSide> {
            Ok(RawSide {
                name: row.get(at)?,
                validity: row.get(at + 1)?,
                uidnext: row.get(at + 2)?,
                modseq: row.get(at + 3)?,
                mailbox_id: row.get(at + 4)?,
                new_ns: row.get(at + 5)?,
                cur_ns: row.get(at + 6)?,
            })
        };
        Ok(RawFolder {
            id: row.get(0)?,
            sides: PerSide::new(side(1)?, side(1 + SIDE_WIDTH)?),
            last_sync_ms: row.get(1 + 2 * SIDE_WIDTH)?,
        })
    }

    fn into_folder(self, path: &Path) -> Result<Folder> {
        let id = FolderId(self.id);
        let far = self.sides.far.into_side(Side::Far, id, path)?;
        let near = self.sides.near.into_side(Side::Near, id, path)?;
        Ok(Folder {
            id,
            names: PerSide::new(far.0, near.0),
            validity: PerSide::new(far.1, near.1),
            markers: PerSide::new(far.2, near.2),
            last_sync_ms: self.last_sync_ms,
        })
    }
}

impl RawSide {
    fn into_side(
        self,
        side: Side,
        id: FolderId,
        path: &Path,
    ) -> Result<(String, Option<UidValidity>, SideMarkers)> {
        let corrupt = |what: String| StateError::Corrupt {
            path: path.to_path_buf(),
            what: format!("folder pair {id}: {side} {what}"),
        };
        let validity = self
            .validity
            .map(|v| {
                u32::try_from(v)
                    .ok()
                    .and_then(|v| UidValidity::new(v).ok())
                    .ok_or_else(|| corrupt(format!("UIDVALIDITY {v} is invalid")))
            })
            .transpose()?;
        let uidnext = self
            .uidnext
            .map(|v| u32::try_from(v).map_err(|_| corrupt(format!("UIDNEXT {v} is invalid"))))
            .transpose()?;
        let highest_modseq = self
            .modseq
            .map(|v| u64::try_from(v).map_err(|_| corrupt(format!("MODSEQ {v} is invalid"))))
            .transpose()?;
        let dir_times = match (self.new_ns, self.cur_ns) {
            (Some(new_ns), Some(cur_ns)) => Some(DirTimes { new_ns, cur_ns }),
            (None, None) => None,
            _ => return Err(corrupt("has one directory time stamp of two".into())),
        };
        let markers = SideMarkers {
            uidnext,
            highest_modseq,
            mailbox_id: self.mailbox_id,
            dir_times,
        };
        Ok((self.name, validity, markers))
    }
}
