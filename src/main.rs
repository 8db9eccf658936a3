//! The `ferry` command: IMAP <-> Maildir sync.
//!
//! The binary is glue: arguments ([`cli`]), the config file ([`config`]),
//! the commands ([`doctor`]), logging and exit codes. Everything else lives
//! in the crates under `crates/`.
//!
//! Errors print as `ferry: <message>` on stderr, with their chain of
//! causes; a usage or config error exits 2, any other error 1
//! (design.md, "Interfaces users see").

#![forbid(unsafe_code)]

mod cli;
mod config;
mod crash;
mod doctor;
mod doctor_server;
mod error_text;
mod plan_print;
mod progress;
mod status_cmd;
mod sync_cmd;
mod trace;

use clap::Parser;
use cli::{Cli, Command};
use config::{Config, ConfigError, ConfigLocation, Dirs};
use ferry_engine::outcome::ExitStatus;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    crash::install_from_env();
    let status = match run(cli) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("ferry: {}", error_text::error_text(&err));
            exit_status_of(&err)
        }
    };
    ExitCode::from(status.code())
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    if let Command::Generate { what } = &cli.command {
        return generate(what);
    }
    let dirs = Dirs::from_env();
    let location = ConfigLocation::resolve(cli.config, &dirs)?;
    let config = Config::load(&location, &dirs)?;
    tracing::info!(
        path = %config.path.display(),
        accounts = config.accounts.len(),
        "config loaded"
    );
    match cli.command {
        Command::Doctor(args) => {
            let accounts = config.select(&args.accounts)?;
            doctor::run(&config, &accounts, &args, cli.quiet)
        }
        Command::Sync(args) => {
            let accounts = config.select(&args.accounts)?;
            sync_cmd::run(
                &config,
                &accounts,
                &args,
                false,
                (cli.quiet, cli.verbose > 0),
            )
        }
        Command::Plan(args) => {
            let accounts = config.select(&args.accounts)?;
            sync_cmd::run(
                &config,
                &accounts,
                &args,
                true,
                (cli.quiet, cli.verbose > 0),
            )
        }
        Command::Status(args) => {
            let accounts = config.select(&args.accounts)?;
            status_cmd::run(&config, &accounts, &args)
        }
        Command::Generate { what } => generate(&what),
    }
}

/// 2 for a config (or account name) error anywhere in the chain, else 1.
/// `ferry generate man|SHELL`: the manual page and completions come from
/// the same definitions as `--help`, so they never drift.
fn generate(what: &str) -> anyhow::Result<ExitStatus> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    if what == "man" {
        render_man(command, &mut out)?;
        return Ok(ExitStatus::Done);
    }
    let shell: clap_complete::Shell = what.parse().map_err(|_| {
        config::ConfigError::new(format!(
            "cannot generate {what:?}: say man, bash, zsh, fish, elvish or powershell"
        ))
    })?;
    clap_complete::generate(shell, &mut command, "ferry", &mut out);
    Ok(ExitStatus::Done)
}

/// The manual page: the top command, then each command's options, then
/// the files, examples and exit status a user looks for.
fn render_man(command: clap::Command, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(out, ".SH \"FERRY {}\"", sub.get_name().to_uppercase())?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{about}")?;
        }
        clap_mangen::Man::new(sub.clone()).render_options_section(out)?;
    }
    out.write_all(MAN_TAIL.as_bytes())?;
    Ok(())
}

/// The hand-written end of the manual page.
const MAN_TAIL: &str = r#".SH FILES
.TP
\fI~/.config/ferry/config.toml\fR
The config file (\fB--config\fR, \fB$FERRY_CONFIG\fR, \fB$XDG_CONFIG_HOME\fR). Every key is described in \fBferry.toml\fR(5).
.TP
\fI~/.local/state/ferry/ACCOUNT.sqlite\fR
What ferry remembers of each account (\fBstate_dir\fR), mode 0600, with \fIACCOUNT.sqlite.lock\fR held during a run and \fIACCOUNT.settings\fR (the settings of the last complete run: after a change, every folder is looked into once), and after a connection that could not be opened, \fIACCOUNT.refused\fR (for a week, the first extra connection opens alone, the others once it is in).
.SH EXAMPLES
A mutt or neomutt user with \fBset folder=~/Mail/work\fR and \fBset mbox_type=Maildir\fR points \fBmaildir\fR at the same directory; ferry keeps the unique part of each file name, so mutt's flag renames and moves are recognised. A notmuch user with \fBsynchronize_flags=true\fR runs \fBferry sync && notmuch new\fR, or puts \fBferry sync\fR alone in notmuch's pre-new hook (never \fBnotmuch new\fR itself there).
.PP
Look first, then sync:
.PP
.nf
    ferry doctor work
    ferry plan work
    ferry sync work
.fi
.PP
Every five minutes with systemd (units in packaging/systemd of the source):
.PP
.nf
    cp packaging/systemd/ferry-sync@.* ~/.config/systemd/user/
    systemctl --user daemon-reload
    systemctl --user enable --now ferry-sync@work.timer
.fi
.SH "EXIT STATUS"
0 done; 1 failed; 2 usage or config error; 3 done, but some folders, messages or accounts failed (each named); 4 a safety guard held deletions back (4 wins over 3); 75 the account is locked by another run; 130 and 143 stopped by SIGINT and SIGTERM after saving the batch in flight.
.SH "SEE ALSO"
.BR ferry.toml (5),
the config file: every key, its default, and examples.
"#;

fn exit_status_of(err: &anyhow::Error) -> ExitStatus {
    if err.chain().any(|cause| cause.is::<ConfigError>()) {
        ExitStatus::Usage
    } else {
        ExitStatus::Failed
    }
}

/// Logs go to stderr: warnings by default, `-v` info, `-vv` everything
/// (protocol traces), `-q` errors only. `$FERRY_LOG` (a tracing filter such
/// as `ferry_imap=trace`) overrides the flags.
fn init_logging(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose >= 2)
        .init();
}
