//! The phases of a tool's run: what each changes before it is timed, and
//! which tools run it at which size.

use crate::mutate;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::Path;

/// One phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// First sync into an empty Maildir.
    Initial,
    /// Resync with nothing changed.
    Noop,
    /// After toggling \Flagged on 1 % of the messages on the server.
    FlagsServer,
    /// After toggling F on 1 % of the local files (a rename, as mutt does).
    FlagsLocal,
    /// After deleting 1 % of the local files.
    DeleteLocal,
    /// After moving 1 % of the local files into another folder.
    MoveLocal,
    /// After moving 1 % of the messages to another folder on the server.
    MoveServer,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 7] = [
        Phase::Initial,
        Phase::Noop,
        Phase::FlagsServer,
        Phase::FlagsLocal,
        Phase::DeleteLocal,
        Phase::MoveLocal,
        Phase::MoveServer,
    ];

    /// The name used in output.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Initial => "initial",
            Phase::Noop => "noop",
            Phase::FlagsServer => "flags-srv",
            Phase::FlagsLocal => "flags-local",
            Phase::DeleteLocal => "del-local",
            Phase::MoveLocal => "move-local",
            Phase::MoveServer => "move-srv",
        }
    }

    /// How many timed runs: the initial sync once, the others `reps` times.
    pub fn runs(self, reps: u32) -> u32 {
        if self == Phase::Initial { 1 } else { reps }
    }

    /// Whether peers run this phase on the corpus of many small messages
    /// (there only the initial sync, no-op and flag phases).
    pub fn for_peers_at_many_small(self) -> bool {
        matches!(
            self,
            Phase::Initial | Phase::Noop | Phase::FlagsServer | Phase::FlagsLocal
        )
    }

    /// Makes this phase's change for repetition `rep`; returns how many
    /// messages it touched.
    pub fn change(self, server: SocketAddr, local: &Path, rep: u32) -> Result<usize> {
        match self {
            Phase::Initial | Phase::Noop => Ok(0),
            Phase::FlagsServer => mutate::toggle_server_flags(server, rep),
            Phase::FlagsLocal => mutate::toggle_local_flags(local, rep),
            Phase::DeleteLocal => mutate::delete_local(local, rep),
            Phase::MoveLocal => mutate::move_local(local, rep),
            Phase::MoveServer => mutate::move_on_server(server, rep),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_selection() {
        assert_eq!(Phase::Initial.runs(10), 1);
        assert_eq!(Phase::MoveServer.runs(10), 10);
        let at_100k: Vec<&str> = Phase::ALL
            .iter()
            .filter(|p| p.for_peers_at_many_small())
            .map(|p| p.label())
            .collect();
        assert_eq!(at_100k, ["initial", "noop", "flags-srv", "flags-local"]);
    }
}
