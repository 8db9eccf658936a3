//! Timed runs: a tool under `/usr/bin/time` (CPU and peak RSS), wall clock
//! measured here, a timeout, and the parsing of `time`'s report.

use anyhow::{Context, Result, bail};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// GNU time's output format: one line this module parses.
pub const TIME_FORMAT: &str = "ferry-bench-time user=%U sys=%S maxrss_kib=%M exit=%x";

/// The longest a timed run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one run cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// Wall clock seconds, from spawn to exit.
    pub wall: f64,
    /// CPU seconds in user mode (the tool and the children it waited for).
    pub user: f64,
    /// CPU seconds in the kernel.
    pub sys: f64,
    /// Peak resident set size, KiB.
    pub maxrss_kib: u64,
    /// "0", another exit status, "sigN", or "timeout".
    pub exit: String,
}

impl Usage {
    /// Adds the CPU of a helper process the tool never waits for (interimap's
    /// local imap); peak RSS is the larger of the two.
    pub fn add_helper(&mut self, helper: &Usage) {
        self.user += helper.user;
        self.sys += helper.sys;
        self.maxrss_kib = self.maxrss_kib.max(helper.maxrss_kib);
    }
}

/// Parses `time -f TIME_FORMAT` output (wall is left 0).
pub fn parse_time(text: &str) -> Result<Usage> {
    let line = text
        .lines()
        .find(|line| line.starts_with("ferry-bench-time "))
        .with_context(|| format!("no timing line in /usr/bin/time's output: {text:?}"))?;
    let field = |key: &str| -> Result<&str> {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("no {key} in {line:?}"))
    };
    let mut exit = field("exit")?.to_owned();
    if let Some(signal) = text
        .lines()
        .find_map(|l| l.strip_prefix("Command terminated by signal "))
    {
        exit = format!("sig{}", signal.trim());
    }
    Ok(Usage {
        wall: 0.0,
        user: field("user")?.parse().context("user time")?,
        sys: field("sys")?.parse().context("system time")?,
        maxrss_kib: field("maxrss_kib")?.parse().context("max RSS")?,
        exit,
    })
}

/// Runs `command` under `/usr/bin/time`, its output to `log`, `time`'s
/// report to `time_file`.
pub fn run_timed(command: &[String], log: &Path, time_file: &Path) -> Result<Usage> {
    let Some((program, args)) = command.split_first() else {
        bail!("empty command");
    };
    let output = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let errors = output.try_clone().context("log file handle")?;
    let started = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", TIME_FORMAT, "-o"])
        .arg(time_file)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .process_group(0)
        .spawn()
        .context("running /usr/bin/time (apt-get install -y time)")?;
    let group = rustix::process::Pid::from_child(&child);
    let (done, watchdog) = mpsc::channel::<()>();
    let killer = thread::spawn(move || {
        let expired = watchdog.recv_timeout(RUN_TIMEOUT) == Err(RecvTimeoutError::Timeout);
        if expired {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        expired
    });
    let waited = child.wait();
    let wall = started.elapsed().as_secs_f64();
    let _ = done.send(());
    let timed_out = killer.join().unwrap_or(false);
    waited.context("waiting for the tool")?;
    let text = fs::read_to_string(time_file)
        .with_context(|| format!("reading {}", time_file.display()))?;
    let mut usage = parse_time(&text)?;
    usage.wall = wall;
    if timed_out {
        usage.exit = "timeout".to_owned();
    }
    Ok(usage)
}

/// Reads a helper's `time` report, waiting a little for it: the helper
/// may exit just after the tool.
pub fn read_helper(time_file: &Path) -> Option<Usage> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Ok(usage) = fs::read_to_string(time_file)
            .map_err(anyhow::Error::from)
            .and_then(|text| parse_time(&text))
        {
            return Some(usage);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_clean_exit() {
        let usage = parse_time("ferry-bench-time user=1.25 sys=0.50 maxrss_kib=10240 exit=0\n")
            .expect("parses");
        assert_eq!(
            usage,
            Usage {
                wall: 0.0,
                user: 1.25,
                sys: 0.5,
                maxrss_kib: 10240,
                exit: "0".into()
            }
        );
    }

    #[test]
    fn parses_failures_and_signals() {
        let failed = "Command exited with non-zero status 3\n\
                      ferry-bench-time user=0.01 sys=0.00 maxrss_kib=900 exit=3\n";
        assert_eq!(parse_time(failed).expect("parses").exit, "3");
        let killed = "Command terminated by signal 9\n\
                      ferry-bench-time user=0.01 sys=0.00 maxrss_kib=900 exit=0\n";
        assert_eq!(parse_time(killed).expect("parses").exit, "sig9");
        assert!(parse_time("").is_err());
        assert!(parse_time("ferry-bench-time user=x sys=0 maxrss_kib=1 exit=0").is_err());
    }

    #[test]
    fn helper_adds_cpu_and_takes_the_larger_rss() {
        let mut usage =
            parse_time("ferry-bench-time user=1.0 sys=0.5 maxrss_kib=100 exit=0").expect("parses");
        let helper =
            parse_time("ferry-bench-time user=0.5 sys=0.25 maxrss_kib=300 exit=0").expect("parses");
        usage.add_helper(&helper);
        assert_eq!((usage.user, usage.sys, usage.maxrss_kib), (1.5, 0.75, 300));
    }

    #[test]
    fn runs_a_command() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let usage = run_timed(
            &["sh".into(), "-c".into(), "echo hi; exit 3".into()],
            &dir.path().join("log"),
            &dir.path().join("time"),
        )?;
        assert_eq!(usage.exit, "3");
        assert!(usage.wall > 0.0);
        assert_eq!(fs::read_to_string(dir.path().join("log"))?, "hi\n");
        Ok(())
    }
}
