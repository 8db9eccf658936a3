//! `ferry sync` and `ferry plan`: build both stores of each account, run
//! the engine, print a summary, earn the exit status.

use crate::cli::SyncArgs;
use crate::config::{AccountConfig, Config, Layout, Sides, SyncDirection};
use crate::error_text::error_text;
use anyhow::Context;
use ferry_core::{PerSide, Side};
use ferry_engine::imap_store::{ImapStore, Opener};
use ferry_engine::maildir_store::MaildirStore;
use ferry_engine::outcome::{ExitStatus, Outcome};
use ferry_engine::sync::{Stores, SyncOptions, SyncReport, sync};
use ferry_imap::Session;
use ferry_plan::folder::Policy;
use ferry_plan::folders::{FolderFilter, FolderPolicy};
use ferry_state::{State, StateError};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// How many times a run connects again after losing its main connection.
const RECONNECTS: usize = 3;

/// Runs `ferry sync` (or `ferry plan` when `dry_run`) for `accounts`.
pub fn run(
    config: &Config,
    accounts: &[&AccountConfig],
    args: &SyncArgs,
    plan_only: bool,
    (quiet, verbose): (bool, bool),
) -> anyhow::Result<ExitStatus> {
    let dry_run = plan_only || args.dry_run;
    let signals = Signals::register()?;
    let mut outcome = Outcome::default();
    for account in accounts {
        if let Some(status) = signals.status() {
            return Ok(status);
        }
        let started = Instant::now();
        let progress = crate::progress::for_account(&account.name, quiet || dry_run, verbose);
        match sync_account(config, account, args, dry_run, &signals, progress) {
            Ok(report) => {
                print_summary(account, &report, (dry_run, args.json, quiet), started)?;
                match report.exit_status() {
                    ExitStatus::GuardHeld => outcome.record_guard_hold(),
                    ExitStatus::Partial => outcome.record_partial_failure(),
                    _ => outcome.record_success(),
                }
            }
            Err(err) if is_locked(&err) => {
                eprintln!("ferry: account {}: {}", account.name, error_text(&err));
                outcome.record_locked();
            }
            Err(err) => {
                eprintln!("ferry: account {}: {}", account.name, error_text(&err));
                outcome.record_failure();
            }
        }
    }
    Ok(signals.status().unwrap_or_else(|| outcome.exit_status()))
}

/// SIGINT and SIGTERM: the run finishes the batch in flight, commits it,
/// and exits 130 or 143.
struct Signals {
    stop: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

impl Signals {
    fn register() -> anyhow::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let signals = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            which: Arc::new(AtomicUsize::new(0)),
        };
        for signal in [SIGINT, SIGTERM] {
            signal_hook::flag::register_usize(signal, Arc::clone(&signals.which), signal as usize)
                .context("cannot install the signal handler")?;
            signal_hook::flag::register(signal, Arc::clone(&signals.stop))
                .context("cannot install the signal handler")?;
        }
        Ok(signals)
    }

    /// The exit status a received signal asks for.
    fn status(&self) -> Option<ExitStatus> {
        match self.which.load(Ordering::SeqCst) {
            0 => None,
            s if s == signal_hook::consts::SIGTERM as usize => Some(ExitStatus::Terminated),
            _ => Some(ExitStatus::Interrupted),
        }
    }
}

fn is_locked(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<StateError>(),
            Some(StateError::Locked { .. })
        )
    })
}

fn sync_account(
    config: &Config,
    account: &AccountConfig,
    args: &SyncArgs,
    dry_run: bool,
    signals: &Signals,
    progress: Option<Arc<dyn ferry_engine::sync::Progress>>,
) -> anyhow::Result<SyncReport> {
    let db = config.state_dir.join(format!("{}.sqlite", account.name));
    let mut state = State::open(&db).map_err(|e| {
        let damaged = e.is_damaged();
        anyhow::Error::new(e).context(match damaged {
            true => format!(
                "cannot open the state, which is damaged: move {} away, and the next run \
                 pairs the messages again by Message-ID and size, deleting nothing",
                db.display()
            ),
            false => "cannot open the state".to_string(),
        })
    })?;
    state
        .claim(&account.identity())
        .context("cannot use the state")?;
    let refusals = Refusals::of(&db);
    let mut far = connect(account, refusals.recent())?;
    // A plan must not even create the Maildir root: a missing one is
    // planned against an empty stand-in (only then is one made: a sync
    // writes nowhere but its Maildir and state).
    let stand_in = match dry_run && !account.maildir.exists() {
        true => Some(tempfile::tempdir().context("cannot make a temporary directory")?),
        false => None,
    };
    let root = stand_in
        .as_ref()
        .map_or(account.maildir.as_path(), |dir| dir.path());
    let mut near = open_maildir(root, account)?;
    let mut options = options(account, args, dry_run);
    options.control.stop = Some(Arc::clone(&signals.stop));
    options.control.progress = progress;
    let settings = Settings::of(account, &db);
    // Folders skipped as unchanged were judged under the settings of the
    // last run; under others (`sync = "both"` after "pull", a larger
    // `max_size`) everything is looked into once.
    let settings_changed = !settings.same_as_last();
    options.full |= settings_changed;
    if settings_changed && !dry_run {
        // The state this run writes is judged under the new settings: until
        // a run over every folder completes, no run may trust the old ones.
        settings.forget();
    }
    let report = sync(
        Stores {
            far: &mut far,
            near: &mut near,
        },
        &mut state,
        &options,
    );
    let refused = far.close();
    if refused && !dry_run {
        refusals.record();
    }
    let report = report?;
    // Only a run over every folder has looked into each under the new
    // settings: after `--folder`, the next full run still looks at all.
    let whole = args.folder.is_empty();
    if settings_changed
        && whole
        && !dry_run
        && report.exit_status() == ExitStatus::Done
        && !report.stopped
    {
        settings.save();
    }
    Ok(report)
}

/// The account settings that decide what a sync does with a folder, kept
/// next to the state (`<account>.settings`) by the last complete run.
struct Settings {
    path: std::path::PathBuf,
    text: String,
}

impl Settings {
    fn of(account: &AccountConfig, db: &std::path::Path) -> Settings {
        let text = format!(
            "{:?}\n",
            (
                account.sync,
                account.create,
                account.remove,
                account.expunge,
                account.max_size,
                &account.folders,
                &account.folder_map,
                account.layout,
            )
        );
        Settings {
            path: db.with_extension("settings"),
            text,
        }
    }

    fn same_as_last(&self) -> bool {
        std::fs::read_to_string(&self.path).is_ok_and(|last| last == self.text)
    }

    /// Removes the saved settings: every run looks at everything until one
    /// over every folder completes. Best effort, like [`Settings::save`].
    fn forget(&self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "cannot remove the saved settings: {e}")
            }
        }
    }

    /// Best effort: a lost file only makes the next run look at everything.
    /// Private (0600), like the state beside it: it names the folders.
    fn save(&self) {
        if let Err(e) = write_private(&self.path, self.text.as_bytes()) {
            tracing::warn!(path = %self.path.display(), "cannot save the settings: {e}");
        }
    }
}

/// Writes `bytes` to a file next to the state, private (0600) like it.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An older file keeps its mode through open: set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// How long a refused connection makes helpers connect carefully.
const REFUSALS_REMEMBERED: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// That a helper connection could not be opened lately (most often the
/// server allows fewer connections than asked): the file
/// `<account>.refused` next to the state, rewritten by each run that met
/// it (not by a dry run). While it is younger than a week, the helpers a
/// run expects to need connect the first alone and the others once it is
/// in, so that a server that allows no more refuses only one; otherwise
/// all side by side, which saves a login's round trips on a distant
/// server.
struct Refusals {
    path: std::path::PathBuf,
}

impl Refusals {
    fn of(db: &std::path::Path) -> Refusals {
        Refusals {
            path: db.with_extension("refused"),
        }
    }

    fn recent(&self) -> bool {
        std::fs::metadata(&self.path)
            .and_then(|meta| meta.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age < REFUSALS_REMEMBERED))
    }

    /// Best effort: a lost file only makes the next run try side by side.
    fn record(&self) {
        let text = "A helper connection could not be opened in the run that last wrote this \
                    file; for a week after, the first helper connects alone, the others once \
                    it is in.\n";
        if let Err(e) = write_private(&self.path, text.as_bytes()) {
            tracing::warn!(path = %self.path.display(), "cannot record the refusal: {e}");
        }
    }
}

/// The account's IMAP store: one session, plus up to `connections - 1`
/// helper sessions opened when folders are listed ahead (same server, same
/// credentials; the password command runs once); `carefully` after a
/// recent refusal (see [`Refusals`]).
fn connect(account: &AccountConfig, carefully: bool) -> anyhow::Result<ImapStore> {
    let options = account.server_options();
    let mut session = Session::connect_traced(&options, crate::trace::protocol_trace())
        .context("cannot connect to the server")?;
    let credentials = match session.is_authenticated() {
        true => None,
        false => Some(account.credentials()?),
    };
    if let Some(credentials) = &credentials {
        session.login(credentials)?;
    }
    session.compress(account.compress)?;
    let compress = account.compress;
    let opener: Opener = Arc::new(move |number| {
        let trace = crate::trace::helper_trace(number);
        let mut session = Session::connect_traced(&options, trace)?;
        if let (false, Some(credentials)) = (session.is_authenticated(), &credentials) {
            session.login(credentials)?;
        }
        session.compress(compress)?;
        Ok(session)
    });
    let helpers = usize::try_from(account.connections.saturating_sub(1)).unwrap_or(0);
    let store = ImapStore::new(session)?
        .with_folder_map(account.folder_map.clone())
        .with_reconnect(opener.clone(), RECONNECTS)
        .with_helpers(opener, helpers);
    Ok(match carefully {
        true => store.connecting_helpers_carefully(),
        false => store,
    })
}

fn open_maildir(root: &std::path::Path, account: &AccountConfig) -> anyhow::Result<MaildirStore> {
    let layout = match account.layout {
        Layout::Fs => ferry_maildir::Layout::Fs,
        Layout::MaildirPlusPlus => ferry_maildir::Layout::MaildirPlusPlus,
    };
    let store = if root.exists() {
        MaildirStore::open(root, layout)
    } else {
        MaildirStore::create(root, layout)
    };
    let store = store.with_context(|| format!("cannot open the Maildir {}", root.display()))?;
    Ok(match crate::crash::maildir_hook() {
        Some(hook) => store.with_step_hook(hook),
        None => store,
    })
}

fn sides(sides: Sides) -> PerSide<bool> {
    match sides {
        Sides::Both => PerSide::new(true, true),
        Sides::Far => PerSide::new(true, false),
        Sides::Near => PerSide::new(false, true),
        Sides::None => PerSide::new(false, false),
    }
}

fn options(account: &AccountConfig, args: &SyncArgs, dry_run: bool) -> SyncOptions {
    let flow_into = match account.sync {
        SyncDirection::Both => PerSide::new(true, true),
        SyncDirection::Pull => PerSide::new(false, true),
        SyncDirection::Push => PerSide::new(true, false),
    };
    let patterns: Vec<String> = if args.folder.is_empty() {
        account.folders.clone()
    } else {
        std::iter::once("!*".to_string())
            .chain(args.folder.iter().cloned())
            .collect()
    };
    SyncOptions {
        policy: Policy {
            flow_into,
            expunge: sides(account.expunge),
            max_size: account.max_size,
            allow_mass_delete: args.allow_mass_delete,
            ..Policy::default()
        },
        folders: FolderPolicy {
            filter: FolderFilter::new(&patterns),
            create: sides(account.create),
            remove: sides(account.remove),
        },
        dry_run,
        full: args.full,
        control: Default::default(),
    }
}

/// The summary of a run; with `--quiet`, only what went wrong or was
/// held back.
fn print_problems(
    out: &mut impl Write,
    account: &AccountConfig,
    report: &SyncReport,
) -> anyhow::Result<()> {
    if !report.guard_held() && !report.has_failures() {
        return Ok(());
    }
    writeln!(out, "account {}:", account.name)?;
    for (name, folder) in &report.folders {
        for held in &folder.held {
            writeln!(out, "  {name}: {}", held_line(held))?;
        }
        for failure in &folder.failed {
            writeln!(out, "  {name}: failed: {failure}")?;
        }
    }
    for vanished in &report.vanished {
        let text = crate::plan_print::describe_vanished(vanished);
        writeln!(out, "  not synced: {text}")?;
    }
    for failure in &report.folder_failures {
        writeln!(out, "  failed: {failure}")?;
    }
    Ok(())
}

fn held_line(held: &ferry_plan::folder::Held) -> String {
    format!(
        "held: {} of {} messages would be removed from the {}; rerun with --allow-mass-delete if that is what you want",
        held.removals,
        held.total,
        crate::plan_print::side_name(held.side)
    )
}

fn print_summary(
    account: &AccountConfig,
    report: &SyncReport,
    (dry_run, json, quiet): (bool, bool, bool),
    started: Instant,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if dry_run {
        return crate::plan_print::print_plan(&mut out, account, report, json);
    }
    if quiet {
        return print_problems(&mut out, account, report);
    }
    writeln!(out, "account {}:", account.name)?;
    let recovered = report.recovered;
    if recovered.adopted + recovered.abandoned > 0 {
        writeln!(
            out,
            "  an interrupted run was recovered: {} copies found done, {} unfinished steps planned again",
            recovered.adopted, recovered.abandoned
        )?;
    }
    for action in &report.folder_actions {
        writeln!(
            out,
            "  folders: {}",
            crate::plan_print::describe_folder_action(action)
        )?;
    }
    for (name, folder) in &report.folders {
        let line = format!(
            "  {name}: pulled {}, pushed {}, flags {}, moved {}, deleted {}",
            folder.copied_into[Side::Near],
            folder.copied_into[Side::Far],
            folder.flags_changed.far + folder.flags_changed.near,
            folder.moved_into.far + folder.moved_into.near,
            folder.removed.far
                + folder.removed.near
                + folder.marked_deleted.far
                + folder.marked_deleted.near,
        );
        let line = match folder.skipped {
            0 => line,
            n => format!("{line}, not copied {n} (larger than max_size, or marked deleted)"),
        };
        writeln!(out, "{line}")?;
        for held in &folder.held {
            writeln!(out, "    {}", held_line(held))?;
        }
        for failure in &folder.failed {
            writeln!(out, "    failed: {failure}")?;
        }
    }
    for vanished in &report.vanished {
        writeln!(
            out,
            "  not synced: {}",
            crate::plan_print::describe_vanished(vanished)
        )?;
    }
    for failure in &report.folder_failures {
        writeln!(out, "  failed: {failure}")?;
    }
    if report.unchanged > 0 {
        writeln!(
            out,
            "  unchanged on both sides, not looked into: {}",
            crate::plan_print::counted(report.unchanged as u64, "folder")
        )?;
    }
    if report.one_side_unchanged > 0 {
        writeln!(
            out,
            "  unchanged on one side, planned from the other's changes: {}",
            crate::plan_print::counted(report.one_side_unchanged as u64, "folder")
        )?;
    }
    if report.stopped {
        writeln!(
            out,
            "  stopped on request: what was done is saved; the next run does the rest"
        )?;
    }
    let t = report.totals();
    writeln!(
        out,
        "  total: pulled {}, pushed {}, flags {}, moved {}, deleted {}, {:.1} MB in {:.1} s",
        t.pulled,
        t.pushed,
        t.flags,
        t.moved,
        t.deleted,
        t.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A refusal is remembered for a week, by the record's age; a record
    /// dated in the future (a clock set back) is not trusted.
    #[test]
    fn a_refusal_is_remembered_for_a_week() {
        let dir = tempfile::tempdir().expect("tempdir");
        let refusals = Refusals::of(&dir.path().join("work.sqlite"));
        assert!(!refusals.recent(), "no record, no refusal");
        refusals.record();
        assert!(refusals.recent());
        let date = |at: SystemTime| {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join("work.refused"))
                .expect("the record");
            file.set_modified(at).expect("set the time");
        };
        let day = Duration::from_secs(24 * 3600);
        date(SystemTime::now() - 6 * day);
        assert!(refusals.recent(), "six days old");
        date(SystemTime::now() - 8 * day);
        assert!(!refusals.recent(), "eight days old");
        date(SystemTime::now() + day);
        assert!(!refusals.recent(), "dated tomorrow");
        refusals.record();
        assert!(refusals.recent(), "a new refusal sets it right");
    }
}
