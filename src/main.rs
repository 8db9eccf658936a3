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
mod doctor;
mod doctor_server;
mod plan_print;
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
    let status = match run(cli) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("ferry: {err:#}");
            exit_status_of(&err)
        }
    };
    ExitCode::from(status.code())
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
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
            sync_cmd::run(&config, &accounts, &args, false)
        }
        Command::Plan(args) => {
            let accounts = config.select(&args.accounts)?;
            sync_cmd::run(&config, &accounts, &args, true)
        }
        Command::Status(args) => {
            let accounts = config.select(&args.accounts)?;
            status_cmd::run(&config, &accounts, &args)
        }
    }
}

/// 2 for a config (or account name) error anywhere in the chain, else 1.
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
