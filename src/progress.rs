//! Progress of `ferry sync` on stderr: a bar on a terminal (indicatif:
//! folder, messages, bytes, rate, ETA), plain lines otherwise (a log or a
//! cron mail gets one line when the work is known, one per folder, and one
//! every ten seconds), nothing with `--quiet` or when there is nothing to
//! do.

use ferry_engine::sync::{Progress, Work};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often a plain line is printed while a long run goes on.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The observer for one account's run, or `None` when quiet. With `-v`
/// logs go to stderr too, so plain lines are used even on a terminal (a bar
/// would be torn by them).
pub fn for_account(
    account: &str,
    quiet: bool,
    verbose: bool,
) -> Option<std::sync::Arc<dyn Progress>> {
    if quiet {
        return None;
    }
    let shown: std::sync::Arc<dyn Progress> = if std::io::stderr().is_terminal() && !verbose {
        std::sync::Arc::new(Bar::new(account))
    } else {
        std::sync::Arc::new(Lines::new(account))
    };
    Some(shown)
}

/// Counts shared by both kinds of display.
struct Counts {
    started: Instant,
    work: Mutex<Work>,
    bytes: AtomicU64,
    done: AtomicUsize,
}

impl Counts {
    fn new() -> Counts {
        Counts {
            started: Instant::now(),
            work: Mutex::new(Work::default()),
            bytes: AtomicU64::new(0),
            done: AtomicUsize::new(0),
        }
    }

    fn work(&self) -> Work {
        self.work.lock().map(|w| *w).unwrap_or_default()
    }

    /// "1.2 of 3.4 MB, 5.6 MB/s" (the total only where sizes were known).
    fn bytes_text(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let total = self.work().bytes;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = bytes as f64 / secs / 1e6;
        match total {
            0 => format!("{:.1} MB, {rate:.1} MB/s", bytes as f64 / 1e6),
            t => format!(
                "{:.1} of {:.1} MB, {rate:.1} MB/s",
                bytes as f64 / 1e6,
                t as f64 / 1e6
            ),
        }
    }
}

/// A progress bar on a terminal.
struct Bar {
    bar: ProgressBar,
    counts: Counts,
}

impl Bar {
    fn new(account: &str) -> Bar {
        // Hidden until the plan shows there is something to do.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {wide_msg} [{bar:24}] {pos}/{len} messages, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(account.to_string());
        Bar {
            bar,
            counts: Counts::new(),
        }
    }

    fn refresh_message(&self, folder: Option<&str>) {
        let folder = folder.map(|f| format!("{f}: ")).unwrap_or_default();
        self.bar
            .set_message(format!("{folder}{}", self.counts.bytes_text()));
    }
}

impl Progress for Bar {
    fn planned(&self, work: Work) {
        if let Ok(mut w) = self.counts.work.lock() {
            *w = work;
        }
        if work.messages == 0 {
            return;
        }
        self.bar.set_length(work.messages as u64);
        self.bar.set_draw_target(ProgressDrawTarget::stderr());
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn folder(&self, folder: &str) {
        self.refresh_message(Some(folder));
    }

    fn bytes(&self, n: u64) {
        self.counts.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn done(&self, messages: usize) {
        self.counts.done.store(messages, Ordering::Relaxed);
        self.bar.set_position(messages as u64);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Plain lines when stderr is not a terminal.
struct Lines {
    account: String,
    counts: Counts,
    last: Mutex<Instant>,
}

impl Lines {
    fn new(account: &str) -> Lines {
        Lines {
            account: account.to_string(),
            counts: Counts::new(),
            last: Mutex::new(Instant::now()),
        }
    }

    fn line(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "ferry: {}: {text}", self.account);
    }

    fn status(&self) -> String {
        format!(
            "{} of {} messages done, {}",
            self.counts.done.load(Ordering::Relaxed),
            self.counts.work().messages,
            self.counts.bytes_text()
        )
    }

    /// A status line when the last one is old enough.
    fn maybe_status(&self) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.elapsed() >= PLAIN_EVERY && self.counts.work().messages > 0 {
            *last = Instant::now();
            drop(last);
            self.line(&self.status());
        }
    }
}

impl Progress for Lines {
    fn planned(&self, work: Work) {
        if let Ok(mut w) = self.counts.work.lock() {
            *w = work;
        }
        if work.messages > 0 {
            let size = match work.bytes {
                0 => String::new(),
                b => format!(" ({:.1} MB to copy)", b as f64 / 1e6),
            };
            self.line(&format!(
                "{} to sync in {}{size}",
                crate::plan_print::counted(work.messages as u64, "message"),
                crate::plan_print::counted(work.folders as u64, "folder")
            ));
        }
    }

    fn folder(&self, folder: &str) {
        self.line(&format!("{folder}: {}", self.status()));
    }

    fn bytes(&self, n: u64) {
        self.counts.bytes.fetch_add(n, Ordering::Relaxed);
        self.maybe_status();
    }

    fn done(&self, messages: usize) {
        self.counts.done.store(messages, Ordering::Relaxed);
        self.maybe_status();
    }
}
