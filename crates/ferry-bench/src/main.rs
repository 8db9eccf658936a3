//! ferry-bench: ferry beside its peers (mbsync, OfflineIMAP, interimap) on
//! identical copies of one generated corpus, each tool against its own
//! private Dovecot on 127.0.0.1, over loopback or 25 ms round trips.
//!
//! For every tool and profile: a fresh server on a hard-linked copy of the
//! cached corpus, then the phases (initial sync, no-op resync, 1 % flag
//! changes on the server and locally, 1 % local deletions, 1 % moves
//! locally and on the server), each run timed under `/usr/bin/time` and
//! followed by a check that both sides agree. Output: a TSV of every run
//! and a markdown table of medians with ferry's ratio to each peer.
//!
//! Modules: [`cli`] (arguments), [`corpus`] (the cached corpus and its
//! copies), [`server`] (Dovecot, proxy, traffic), [`tools`] (peers and
//! their configs), [`phase`] and [`mutate`] (the changes), [`timing`]
//! (timed runs), [`check`] and [`imap`] (the agreement check),
//! [`report`] (TSV and tables), [`run`] (the course of it all).

mod check;
mod cli;
mod corpus;
mod imap;
mod mutate;
mod phase;
mod report;
mod run;
mod server;
mod timing;
mod tools;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match run::run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("ferry-bench: some runs failed their check (see the tables)");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("ferry-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}
