//! The command line: global options and subcommands (clap derive).
//!
//! `--config`, `-v` and `-q` are global: accepted before or after the
//! subcommand. Usage errors exit 2 (clap's default, and design.md's).

use clap::{ArgAction, Args, Parser, Subcommand};
use std::path::PathBuf;

/// Fast, safe two-way IMAP <-> Maildir sync.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit status: 0 ok, 1 failed, 2 usage or config error, 3 some folders, \
messages or accounts failed, 4 a safety guard held deletions back, 75 the account is locked by \
another run."
)]
pub struct Cli {
    /// The config file [default: $XDG_CONFIG_HOME/ferry/config.toml, else
    /// ~/.config/ferry/config.toml]
    #[arg(long, global = true, value_name = "PATH", env = "FERRY_CONFIG")]
    pub config: Option<PathBuf>,

    /// More output: -v logs what ferry does, -vv adds protocol traces
    /// (passwords are never shown)
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less output: errors and warnings only
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the config, the password, the Maildir and the server, and say
    /// how to fix what is wrong
    ///
    /// Exits 0 when every check passes (warnings do not count), 1 when one
    /// fails, 2 when the config cannot be read.
    Doctor(DoctorArgs),
    /// Sync accounts both ways (all accounts when none is named)
    Sync(SyncArgs),
    /// Show what `ferry sync` would do, changing nothing
    Plan(SyncArgs),
    /// Show when accounts last synced, their folders and counts, and
    /// pending work of an interrupted run
    Status(StatusArgs),
    /// Print the manual page or shell completions (for packagers)
    #[command(hide = true)]
    Generate {
        /// `man`, or a shell: bash, zsh, fish, elvish, powershell
        what: String,
    },
}

/// `ferry status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The accounts to show [default: all]
    #[arg(value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `ferry sync` and `ferry plan`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The accounts to sync [default: all]
    #[arg(value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Sync only this folder (a local name or pattern; repeatable)
    #[arg(long, value_name = "NAME")]
    pub folder: Vec<String>,

    /// Change nothing; print the plan (the same as `ferry plan`)
    #[arg(long)]
    pub dry_run: bool,

    /// Let through deletions the mass-delete guard held back (more than
    /// half of a folder and more than 20 messages)
    #[arg(long)]
    pub allow_mass_delete: bool,

    /// Look at every message of every folder, trusting no shortcut that
    /// skips a folder or message as unchanged
    #[arg(long)]
    pub full: bool,

    /// Print the plan as JSON (with `plan` or `--dry-run`)
    #[arg(long)]
    pub json: bool,
}

/// `ferry doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The accounts to check [default: all]
    #[arg(value_name = "ACCOUNT")]
    pub accounts: Vec<String>,

    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,

    /// Check the config, password, Maildir and state dir without
    /// contacting the server (for an offline machine)
    #[arg(long)]
    pub no_connect: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for argv in [
            &["ferry", "--config", "/c.toml", "-vv", "doctor", "work"][..],
            &["ferry", "doctor", "work", "--config", "/c.toml", "-v", "-v"][..],
        ] {
            let cli = Cli::try_parse_from(argv).expect("parses");
            assert_eq!(cli.config, Some(PathBuf::from("/c.toml")));
            assert_eq!(cli.verbose, 2);
            match cli.command {
                Command::Doctor(args) => assert_eq!(args.accounts, ["work"]),
                other => panic!("parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn verbose_and_quiet_conflict() {
        assert!(Cli::try_parse_from(["ferry", "-v", "-q", "doctor"]).is_err());
    }
}
