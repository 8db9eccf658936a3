//! The benchmark's course: check what is needed, pick the tools, generate
//! the corpus, then for each profile and tool start a fresh server, run the
//! phases (change, pause, timed run, traffic, check) and record every run.

use crate::check;
use crate::cli::{Args, Profile, Size, ToolName};
use crate::corpus;
use crate::phase::Phase;
use crate::report::{self, Row, TSV_HEADER, on_off};
use crate::server::{BenchServer, Wire};
use crate::timing::{self, Usage};
use crate::tools::{self, Setup, Target};
use anyhow::{Context, Result, bail};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The pause before every timed run: Maildir directory times have whole
/// seconds on some tools' reading (mbsync otherwise sleeps itself).
const SETTLE: Duration = Duration::from_millis(1100);

/// OfflineIMAP runs only on corpora up to this many messages.
const OFFLINEIMAP_MAX: usize = 20_000;

/// What every tool's run shares.
struct Bench {
    work: PathBuf,
    corpus: PathBuf,
    ferry: PathBuf,
    size: Size,
    reps: u32,
    compress: bool,
}

/// Runs the benchmark; returns whether every run passed its check.
pub fn run(args: &Args) -> Result<bool> {
    prerequisites()?;
    let work = work_dir(args)?;
    let ferry = ferry_binary(args)?;
    let (tools, skipped) = select_tools(&args.tools, &args.size);
    let spec = corpus::spec(&args.size, args.seed);
    let (corpus, corpus_note) = corpus::ensure(&work, &spec)?;
    let preamble = preamble(
        args,
        &ferry,
        &tools,
        &skipped,
        &corpus::describe(&spec),
        &corpus_note,
    );
    print!("{preamble}");
    let bench = Bench {
        work,
        corpus,
        ferry,
        size: args.size.clone(),
        reps: args.reps,
        compress: args.compress.is_on(),
    };
    let mut results = Results::create(&bench)?;
    let mut aborted = Vec::new();
    for profile in args.profile.profiles() {
        for &tool in &tools {
            if let Err(error) = run_tool(&bench, tool, profile, &mut results) {
                let what = format!("{} / {}: {error:#}", tool.label(), profile.label());
                eprintln!("ferry-bench: aborted {what}");
                aborted.push(what);
            }
        }
    }
    let passed = results.finish(&preamble, &aborted)?;
    Ok(passed && aborted.is_empty())
}

fn prerequisites() -> Result<()> {
    for (program, package) in [("dovecot", "dovecot-imapd"), ("doveadm", "dovecot-core")] {
        if tools::find_in_path(program).is_none() {
            bail!("{program} not found: apt-get install -y {package}");
        }
    }
    if !Path::new("/usr/bin/time").exists() {
        bail!("/usr/bin/time not found: apt-get install -y time");
    }
    Ok(())
}

fn work_dir(args: &Args) -> Result<PathBuf> {
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/ferry-bench-{}", args.size.label)));
    fs::create_dir_all(work.join("logs"))
        .with_context(|| format!("creating {}", work.display()))?;
    let work = work
        .canonicalize()
        .with_context(|| format!("resolving {}", work.display()))?;
    tools::check_path(&work)?;
    Ok(work)
}

fn ferry_binary(args: &Args) -> Result<PathBuf> {
    let ferry = match &args.ferry {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("locating ferry-bench")?
            .with_file_name("ferry"),
    };
    if !ferry.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release --bin ferry` (bench/run does), or pass --ferry",
            ferry.display()
        );
    }
    ferry
        .canonicalize()
        .with_context(|| format!("resolving {}", ferry.display()))
}

/// The tools to run, and why the others are skipped.
fn select_tools(wanted: &[ToolName], size: &Size) -> (Vec<ToolName>, Vec<String>) {
    let mut tools: Vec<ToolName> = wanted.to_vec();
    tools.sort();
    tools.dedup();
    let mut skipped = Vec::new();
    tools.retain(|&tool| {
        let reason = match tools::missing(tool) {
            Some(reason) => Some(reason),
            None if tool == ToolName::Offlineimap && size.count > OFFLINEIMAP_MAX => Some(format!(
                "runs only up to {OFFLINEIMAP_MAX} messages (its initial sync alone takes minutes)"
            )),
            None => None,
        };
        if let Some(reason) = &reason {
            skipped.push(format!("{}: {reason}", tool.label()));
        }
        reason.is_none()
    });
    (tools, skipped)
}

/// Whether `tool` runs `phase` at `size`.
fn runs_phase(tool: ToolName, size: &Size, phase: Phase) -> bool {
    tool == ToolName::Ferry || !size.many_small || phase.for_peers_at_many_small()
}

fn preamble(
    args: &Args,
    ferry: &Path,
    tools: &[ToolName],
    skipped: &[String],
    corpus: &str,
    corpus_note: &str,
) -> String {
    let compress = on_off(args.compress.is_on());
    let ferry_compress = if args.compress.is_on() {
        "always"
    } else {
        "never"
    };
    let mut text = format!(
        "# ferry-bench, {date}\n\
         # corpus: {corpus} ({corpus_note})\n\
         # server: {dovecot}, a private instance per tool and profile on 127.0.0.1, \
         COMPRESS=DEFLATE offered: {compress}; ferry runs with compress = \"{ferry_compress}\", \
         mbsync and interimap use COMPRESS whenever offered, OfflineIMAP never\n\
         # tools: {versions}\n\
         # profiles: loopback = straight to Dovecot; rtt25 = 12.5 ms each way through an in-process proxy\n\
         # runs: the initial sync once, every other phase {reps} times (a fresh 1 % change before each); \
         a {settle:.1} s pause before each run; tables show medians; ferry ÷ tool = ferry's median wall time \
         divided by the tool's\n\
         # machine: {cores} cores, load average {load}\n",
        date = now(),
        dovecot = dovecot_version(),
        versions = tool_versions(tools, ferry),
        reps = args.reps,
        settle = SETTLE.as_secs_f64(),
        cores = thread::available_parallelism().map_or(0, usize::from),
        load = load_average(),
    );
    for reason in skipped {
        text.push_str(&format!("# skipped {reason}\n"));
    }
    if args.size.many_small {
        text.push_str("# at this size peers run only the initial sync, no-op and flag phases\n");
    }
    text
}

/// The current time in UTC.
fn now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    ferry_testkit::client::imap_date(seconds)
}

/// "Dovecot 2.3.19.1".
fn dovecot_version() -> String {
    tools::version(Path::new("dovecot"))
        .split_whitespace()
        .next()
        .map_or_else(|| "Dovecot".to_owned(), |v| format!("Dovecot {v}"))
}

/// "ferry 0.1.0 (path), mbsync 1.4.4, ...".
fn tool_versions(tools: &[ToolName], ferry: &Path) -> String {
    let versions: Vec<String> = tools
        .iter()
        .map(|&tool| match tool {
            ToolName::Ferry => format!("{} ({})", tools::version(ferry), ferry.display()),
            peer => {
                let version = tools::version(Path::new(peer.label()));
                let number = version.split_whitespace().last().unwrap_or("?").to_owned();
                format!("{} {number}", peer.label())
            }
        })
        .collect();
    versions.join(", ")
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs every phase of `tool` on a fresh server.
fn run_tool(bench: &Bench, tool: ToolName, profile: Profile, results: &mut Results) -> Result<()> {
    println!("## {} / {}", tool.label(), profile.label());
    let server = BenchServer::start(&bench.corpus, bench.compress, profile)?;
    let dir = bench.work.join(profile.label()).join(tool.label());
    let target = Target {
        dir: &dir,
        port: server.port(),
        compress: bench.compress,
    };
    let setup = tools::prepare(tool, &target, &bench.ferry)?;
    let phases = Phase::ALL
        .into_iter()
        .filter(|&phase| runs_phase(tool, &bench.size, phase));
    for phase in phases {
        for rep in 1..=phase.runs(bench.reps) {
            let changed = phase
                .change(server.direct_addr(), &setup.local, rep)
                .with_context(|| format!("changing for {} #{rep}", phase.label()))?;
            let run = Run {
                tool,
                profile,
                phase,
                rep,
                changed,
            };
            let row = timed_run(bench, &server, &setup, &run)?;
            results.push(row)?;
        }
    }
    drop(server);
    // The local copy can be as big as the corpus: keep only configs and logs.
    fs::remove_dir_all(&setup.local).with_context(|| format!("removing {}", setup.local.display()))
}

/// Which run this is.
struct Run {
    tool: ToolName,
    profile: Profile,
    phase: Phase,
    rep: u32,
    changed: usize,
}

/// One timed run and its check.
fn timed_run(bench: &Bench, server: &BenchServer, setup: &Setup, run: &Run) -> Result<Row> {
    thread::sleep(SETTLE);
    let offset = server.quiet_log_offset()?;
    let wire_before = server.wire();
    if let Some(helper) = &setup.helper_time {
        let _ = fs::remove_file(helper);
    }
    let tag = format!(
        "{}-{}-{}-{}",
        run.profile.label(),
        run.tool.label(),
        run.phase.label(),
        run.rep
    );
    let log = bench.work.join("logs").join(format!("{tag}.log"));
    let time_file = bench.work.join("logs").join(format!("{tag}.time"));
    let mut usage = timing::run_timed(&setup.command, &log, &time_file)?;
    let mut notes = Vec::new();
    if let Some(helper) = &setup.helper_time {
        match timing::read_helper(helper) {
            Some(helper) => usage.add_helper(&helper),
            None => notes.push("no time report from the local imap".to_owned()),
        }
    }
    let traffic = server.traffic_since(offset)?;
    let wire = wire_delta(wire_before, server.wire());
    let (check, detail) = verdict(&usage, check::check(server.direct_addr(), &setup.local));
    notes.insert(0, detail);
    let row = Row {
        tool: run.tool,
        size: bench.size.label.clone(),
        profile: run.profile.label(),
        compress: bench.compress,
        phase: run.phase,
        rep: run.rep,
        changed: run.changed,
        usage,
        traffic,
        wire,
        check,
        detail: notes.join("; "),
    };
    print_progress(&row, &log);
    Ok(row)
}

/// The bytes through the proxy between two readings.
fn wire_delta(before: Option<Wire>, after: Option<Wire>) -> Option<Wire> {
    let (before, after) = (before?, after?);
    Some(Wire {
        to_server: after.to_server.saturating_sub(before.to_server),
        to_client: after.to_client.saturating_sub(before.to_client),
    })
}

/// The check column and its detail.
fn verdict(usage: &Usage, checked: Result<check::Verdict>) -> (String, String) {
    match checked {
        Err(error) => ("error".to_owned(), format!("check failed: {error:#}")),
        Ok(v) if usage.exit != "0" => (format!("exit {}", usage.exit), v.detail),
        Ok(v) if !v.ok => ("MISMATCH".to_owned(), v.detail),
        Ok(v) => ("ok".to_owned(), v.detail),
    }
}

fn print_progress(row: &Row, log: &Path) {
    println!(
        "  {:<11} {:<11} {:>2}  {:>8} s  rss {:>6.1} MiB  srv in/out {} / {} KiB  changed {:<4} {}",
        row.tool.label(),
        row.phase.label(),
        row.rep,
        report::seconds(row.usage.wall),
        row.usage.maxrss_kib as f64 / 1024.0,
        report::kib(row.traffic.bytes_in as f64),
        report::kib(row.traffic.bytes_out as f64),
        row.changed,
        row.check,
    );
    if !row.ok() {
        println!("    check: {}", row.detail);
        let output = fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = output.lines().collect();
        for line in &lines[lines.len().saturating_sub(10)..] {
            println!("    | {line}");
        }
        println!("    (whole output: {})", log.display());
    }
}

/// The TSV written as runs finish, and the rows for the table.
struct Results {
    rows: Vec<Row>,
    tsv: File,
    tsv_path: PathBuf,
    md_path: PathBuf,
}

impl Results {
    fn create(bench: &Bench) -> Result<Results> {
        let stem = format!("results-{}-z{}", bench.size.label, on_off(bench.compress));
        let tsv_path = bench.work.join(format!("{stem}.tsv"));
        let md_path = bench.work.join(format!("{stem}.md"));
        for path in [&tsv_path, &md_path] {
            if path.exists() {
                fs::rename(path, path.with_extension("prev"))
                    .with_context(|| format!("keeping the previous {}", path.display()))?;
            }
        }
        let mut tsv =
            File::create(&tsv_path).with_context(|| format!("creating {}", tsv_path.display()))?;
        writeln!(tsv, "{TSV_HEADER}").context("writing the TSV header")?;
        Ok(Results {
            rows: Vec::new(),
            tsv,
            tsv_path,
            md_path,
        })
    }

    fn push(&mut self, row: Row) -> Result<()> {
        writeln!(self.tsv, "{}", row.tsv())
            .with_context(|| format!("writing {}", self.tsv_path.display()))?;
        self.rows.push(row);
        Ok(())
    }

    /// Prints the tables and writes them next to the TSV; returns whether
    /// every run passed.
    fn finish(self, preamble: &str, aborted: &[String]) -> Result<bool> {
        let mut text = format!("{preamble}\n{}", report::markdown(&self.rows));
        for what in aborted {
            text.push_str(&format!("**aborted** {what}\n"));
        }
        fs::write(&self.md_path, &text)
            .with_context(|| format!("writing {}", self.md_path.display()))?;
        println!("\n{text}");
        println!(
            "every run: {}\ntables: {}",
            self.tsv_path.display(),
            self.md_path.display()
        );
        Ok(self.rows.iter().all(Row::ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_run_fewer_phases_at_100k() {
        let big = Size::parse("100k").expect("size");
        let small = Size::parse("2000").expect("size");
        assert!(runs_phase(ToolName::Ferry, &big, Phase::MoveServer));
        assert!(!runs_phase(ToolName::Mbsync, &big, Phase::MoveServer));
        assert!(runs_phase(ToolName::Mbsync, &big, Phase::FlagsLocal));
        assert!(runs_phase(ToolName::Mbsync, &small, Phase::MoveServer));
    }

    #[test]
    fn offlineimap_only_up_to_20k() {
        let big = Size::parse("100k").expect("size");
        let (tools, skipped) = select_tools(&[ToolName::Ferry, ToolName::Offlineimap], &big);
        assert!(!tools.contains(&ToolName::Offlineimap));
        assert!(skipped.iter().any(|s| s.starts_with("offlineimap:")));
    }

    #[test]
    fn verdicts() {
        let usage = |exit: &str| Usage {
            wall: 1.0,
            user: 0.0,
            sys: 0.0,
            maxrss_kib: 0,
            exit: exit.into(),
        };
        let good = || {
            Ok(check::Verdict {
                ok: true,
                detail: "d".into(),
            })
        };
        assert_eq!(verdict(&usage("0"), good()).0, "ok");
        assert_eq!(verdict(&usage("3"), good()).0, "exit 3");
        let bad = check::Verdict {
            ok: false,
            detail: "x".into(),
        };
        assert_eq!(verdict(&usage("0"), Ok(bad)).0, "MISMATCH");
        assert_eq!(
            verdict(&usage("0"), Err(anyhow::anyhow!("down"))).0,
            "error"
        );
    }
}
