//! Opening an account's state: the lock, the files and their modes, the
//! connection settings, the schema. [`State`]'s documentation gives the
//! order and the reasons.

use crate::error::{Result, StateError};
use crate::lock::AccountLock;
use crate::schema;
use crate::sql::{SqlContext, write_tx};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::ffi::OsString;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const JOURNAL_SIZE_LIMIT: i64 = 16 << 20;

/// An account's state, open for one run: holds the account lock until
/// dropped.
///
/// Reads take `&self`; writes take `&mut self` and each is one transaction.
///
/// # Files and settings
///
/// Order: the parent directory is created (mode 0700) if missing, then the
/// account lock `<db>.lock` is taken, then the database file is created with
/// mode 0600 before SQLite sees it, then the schema is brought up to date.
/// Taking the lock first means two runs can never both migrate or write.
///
/// SQLite creates the `-wal` and `-shm` files with the mode of the database
/// file (its unix VFS copies it, and `fchmod`s past the umask), so they are
/// 0600 too; as a second line of defence [`State::open`] tightens any of the
/// three that is readable by group or others.
///
/// Settings, chosen for a journal that must survive power loss:
/// - `journal_mode=WAL`: writers never block `ferry status` readers, and a
///   commit is one sequential append.
/// - `synchronous=FULL`: every commit fsyncs the WAL. Every transaction this
///   crate runs is a batch (a batch of intents, a batch of completions, a
///   folder's markers), never a message, so this is one fsync per batch; the
///   design requires intents to be durable before their side effects, and
///   NORMAL would let a power cut lose a recorded intent while the APPEND it
///   guarded survived (a killed process loses nothing in either mode).
///   Measured on ext4 in a VM, FULL costs about 0.25 ms more per commit
///   than NORMAL: journalling 100,000 messages in batches of 1,000 takes
///   0.2 s longer, in batches of 20 (10,000 commits) 2.4 s longer; next to
///   the transfer of 100,000 messages, noise. So it is FULL always, rather
///   than switching modes between recording and completing.
/// - `busy_timeout` of 5 s: the lock keeps writers apart, so only a reader's
///   brief checkpoint interference can make SQLite wait.
/// - `foreign_keys=ON`: pairs and intents cannot point at missing folders.
/// - `journal_size_limit` of 16 MiB: the WAL shrinks back after a large
///   first sync.
#[derive(Debug)]
pub struct State {
    // Field order is drop order: the connection closes (and checkpoints)
    // before the lock is released.
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    lock: AccountLock,
}

impl State {
    /// Opens (creating if needed) the state database at `path` for a run:
    /// takes the account lock `<path>.lock`, creates the file with mode
    /// 0600, and upgrades the schema.
    ///
    /// Fails at once with [`StateError::Locked`] (naming the holder's pid)
    /// when another run holds the lock, and with [`StateError::TooNew`] when
    /// a newer ferry wrote the database.
    pub fn open(path: &Path) -> Result<State> {
        create_parent(path)?;
        let lock = AccountLock::acquire(&State::lock_path(path))?;
        create_private(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).ctx(path, "open")?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .ctx(path, "set the busy timeout")?;
        // Refuse a foreign or newer file before changing anything in it
        // (switching to WAL writes its header); `migrate` checks again under
        // the exclusive lock.
        schema::check_readable(&schema::header(&conn, path)?, path)?;
        configure(&conn, path)?;
        schema::migrate(&mut conn, path)?;
        tighten_side_files(path)?;
        Ok(State {
            conn,
            path: path.to_path_buf(),
            lock,
        })
    }

    /// The lock file that guards the database at `db`: `<db>.lock`.
    pub fn lock_path(db: &Path) -> PathBuf {
        let mut name = OsString::from(db.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The account lock this state holds.
    pub fn lock(&self) -> &AccountLock {
        &self.lock
    }

    /// Makes sure the database belongs to the account `identity` (its
    /// server's "user@host"): a database that recorded none yet records
    /// it; one that recorded another is refused with
    /// [`StateError::OtherOwner`] and left as it is.
    pub fn claim(&mut self, identity: &str) -> Result<()> {
        let tx = write_tx(&mut self.conn).ctx(&self.path, "begin recording the owner")?;
        let recorded: Option<String> = tx
            .query_row("SELECT identity FROM owner WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .ctx(&self.path, "read the owner")?;
        match recorded {
            Some(recorded) if recorded == identity => Ok(()),
            Some(recorded) => Err(StateError::OtherOwner {
                path: self.path.clone(),
                recorded,
                now: identity.to_string(),
            }),
            None => {
                tx.execute(
                    "INSERT INTO owner (id, identity) VALUES (1, ?1)",
                    [identity],
                )
                .ctx(&self.path, "record the owner")?;
                tx.commit().ctx(&self.path, "record the owner")
            }
        }
    }
}

/// Opens an existing database read-only, without the lock and without
/// upgrading it; `None` when there is no file. For `ferry status` while a
/// run may be writing.
pub(crate) fn open_read_only(path: &Path) -> Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).ctx(path, "open read-only")?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .ctx(path, "set the busy timeout")?;
    let header = schema::header(&conn, path)?;
    schema::check_current(&header, path)?;
    Ok(Some(conn))
}

fn configure(conn: &Connection, path: &Path) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", true)
        .ctx(path, "enable foreign keys")?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .ctx(path, "switch to WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still safe (rollback journal, FULL sync), only slower.
        tracing::warn!(path = %path.display(), %mode, "WAL is not available here");
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx(path, "set synchronous=FULL")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .ctx(path, "limit the WAL size")?;
    // Sorts and temporary tables stay in memory: a sync writes nothing
    // outside its Maildir and state directory (a read-only or full /tmp,
    // a sandboxed service, must not stop it).
    conn.pragma_update(None, "temp_store", "MEMORY")
        .ctx(path, "keep temporary tables in memory")?;
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|source| StateError::Io {
            path: parent.to_path_buf(),
            what: "create the state directory",
            source,
        })
}

/// Creates the database file with mode 0600 if it does not exist, and
/// takes group and other access away if it does.
fn create_private(path: &Path) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| StateError::Io {
            path: path.to_path_buf(),
            what: "create the database file",
            source,
        })?;
    make_private(&file, path)
}

fn make_private(file: &std::fs::File, path: &Path) -> Result<()> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        what: "make the file private (mode 0600)",
        source,
    };
    let mode = file.metadata().map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::info!(path = %path.display(), mode = format!("{mode:o}"), "tightening to 0600");
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    Ok(())
}

/// Tightens `-wal` and `-shm` where they exist (SQLite already gives them
/// the database file's mode; this only guards against a file left by
/// something else).
fn tighten_side_files(path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm"] {
        let mut name = OsString::from(path.as_os_str());
        name.push(suffix);
        let side = PathBuf::from(name);
        match std::fs::File::open(&side) {
            Ok(file) => make_private(&file, &side)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateError::Io {
                    path: side,
                    what: "open it to check its mode",
                    source,
                });
            }
        }
    }
    Ok(())
}
