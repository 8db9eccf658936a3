//! Exit statuses: what a run tells cron, systemd and scripts.
//!
//! 0 done; 1 failed; 2 usage or config error; 3 done but some folders,
//! messages or accounts failed; 4 a safety guard held deletions back (4 wins
//! over 3); 75 the account is locked by another run; 130 / 143 stopped by
//! SIGINT / SIGTERM after committing the action in flight.

/// The process exit status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Everything was done.
    Done,
    /// Nothing useful could be done.
    Failed,
    /// The command line or the config is wrong.
    Usage,
    /// Done, but some folders, messages or accounts failed.
    Partial,
    /// A safety guard held some deletions back.
    GuardHeld,
    /// Another run holds the account lock; try later.
    Locked,
    /// Stopped by SIGINT after committing.
    Interrupted,
    /// Stopped by SIGTERM after committing.
    Terminated,
}

impl ExitStatus {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Done => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Partial => 3,
            ExitStatus::GuardHeld => 4,
            ExitStatus::Locked => 75,
            ExitStatus::Interrupted => 130,
            ExitStatus::Terminated => 143,
        }
    }
}

/// What happened across the accounts of one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    completed: usize,
    partial_failures: usize,
    failed: usize,
    guard_holds: usize,
    locked: usize,
}

impl Outcome {
    /// An account finished without trouble.
    pub fn record_success(&mut self) {
        self.completed += 1;
    }

    /// Some folder, message or account failed while the rest completed.
    pub fn record_partial_failure(&mut self) {
        self.partial_failures += 1;
    }

    /// An account failed as a whole.
    pub fn record_failure(&mut self) {
        self.failed += 1;
    }

    /// A safety guard held deletions back.
    pub fn record_guard_hold(&mut self) {
        self.guard_holds += 1;
    }

    /// An account was locked by another run.
    pub fn record_locked(&mut self) {
        self.locked += 1;
    }

    /// The status for the whole command: a guard hold wins over partial
    /// failure; a lone failure or lock decides only when nothing completed.
    pub fn exit_status(&self) -> ExitStatus {
        let anything_done = self.completed + self.partial_failures + self.guard_holds > 0;
        if self.guard_holds > 0 {
            ExitStatus::GuardHeld
        } else if self.partial_failures > 0 || (anything_done && self.failed + self.locked > 0) {
            ExitStatus::Partial
        } else if self.failed > 0 {
            ExitStatus::Failed
        } else if self.locked > 0 {
            ExitStatus::Locked
        } else {
            ExitStatus::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(events: &[fn(&mut Outcome)]) -> u8 {
        let mut outcome = Outcome::default();
        events.iter().for_each(|record| record(&mut outcome));
        outcome.exit_status().code()
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(status(&[]), 0);
        assert_eq!(status(&[Outcome::record_success]), 0);
        assert_eq!(status(&[Outcome::record_failure]), 1);
        assert_eq!(
            status(&[Outcome::record_success, Outcome::record_failure]),
            3
        );
        assert_eq!(status(&[Outcome::record_partial_failure]), 3);
        assert_eq!(
            status(&[Outcome::record_partial_failure, Outcome::record_guard_hold]),
            4
        );
        assert_eq!(status(&[Outcome::record_locked]), 75);
        assert_eq!(
            status(&[Outcome::record_success, Outcome::record_locked]),
            3
        );
        assert_eq!(
            status(&[Outcome::record_failure, Outcome::record_locked]),
            1
        );
    }
}
