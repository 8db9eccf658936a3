//! Directory time stamps: when a listing is complete, and when a folder is
//! provably unchanged.
//!
//! Every change to a directory's entries (create, rename in or out, unlink)
//! sets its mtime and its ctime to the current time. Two limits make an
//! equal time stamp weaker proof than it looks:
//!
//! - **Granularity.** File system time stamps come from a coarse clock
//!   (Linux: one scheduler tick, 1 to 10 ms, even where the stamp has
//!   nanosecond fields), or have whole-second (ext4 with small inodes, NFS
//!   servers) or two-second (FAT) resolution. Two changes within one tick
//!   get the same stamp: if a directory changed at `t` and we look at it
//!   within that tick, a second change right after ours would not move the
//!   stamp.
//! - **mtime can be set.** `touch -d`, `tar` and `rsync -t` set a
//!   directory's mtime to anything. ctime cannot be set; any change of the
//!   entries or of the mtime moves it to "now".
//!
//! The rules, therefore:
//!
//! 1. A stamp is `(mtime, ctime)` in nanoseconds; stamps are compared whole.
//! 2. A stamp is **settled** at time `t` when both its times are older than
//!    `t - margin`. The margin is [`FINE_MARGIN`] (100 ms, ten ticks of the
//!    coarsest Linux clock) when any of the four nanosecond fields of the two
//!    directories is non-zero, and [`COARSE_MARGIN`] (2 s, FAT's resolution)
//!    when all are zero, which is what whole-second file systems show.
//! 3. A listing is **stable** (complete) when the stamps of `new/` and
//!    `cur/` taken before and after it are equal *and* were settled when the
//!    listing began: then any change during the listing would have moved a
//!    stamp.
//! 4. Only a stable listing yields a [`DirTimes`] to store
//!    ([`Listing::proof`](crate::Listing::proof)). They are the **ctimes**
//!    of `new/` and `cur/` (not the mtimes, which can be set back).
//! 5. A folder is **unchanged since** stored [`DirTimes`] when the current
//!    ctimes equal them and are older than `now - margin` (the second half is
//!    implied by rule 4 but checked anyway, in case the times came from
//!    elsewhere).
//!
//! The clock compared against is the local system clock. A network file
//! system whose server clock runs ahead of ours by more than the margin
//! defeats rule 2; `--full` ignores the shortcut.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Context, Result};

/// The settle margin on file systems with sub-second time stamps.
pub const FINE_MARGIN: Duration = Duration::from_millis(100);
/// The settle margin on file systems whose stamps have whole seconds only.
pub const COARSE_MARGIN: Duration = Duration::from_secs(2);

/// The time stamps of one directory, in nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirStamp {
    /// Last modification of the entries (settable by users).
    pub mtime_ns: i64,
    /// Last change of the inode (not settable).
    pub ctime_ns: i64,
}

impl DirStamp {
    /// Stats `dir`.
    pub fn of(dir: &Path) -> Result<DirStamp> {
        let meta = fs::metadata(dir).at("reading the time stamps of", dir)?;
        Ok(DirStamp {
            mtime_ns: to_ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: to_ns(meta.ctime(), meta.ctime_nsec()),
        })
    }

    fn has_fraction(&self) -> bool {
        self.mtime_ns % 1_000_000_000 != 0 || self.ctime_ns % 1_000_000_000 != 0
    }
}

/// The stamps of a folder's `new/` and `cur/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamps {
    /// `new/`.
    pub new: DirStamp,
    /// `cur/`.
    pub cur: DirStamp,
}

impl Stamps {
    /// Stats `folder/new` and `folder/cur`.
    pub fn of(folder: &Path) -> Result<Stamps> {
        Ok(Stamps {
            new: DirStamp::of(&folder.join("new"))?,
            cur: DirStamp::of(&folder.join("cur"))?,
        })
    }

    /// The settle margin these stamps call for (rule 2).
    pub fn margin(&self) -> Duration {
        if self.new.has_fraction() || self.cur.has_fraction() {
            FINE_MARGIN
        } else {
            COARSE_MARGIN
        }
    }

    /// The newest of the four times.
    fn newest_ns(&self) -> i64 {
        [
            self.new.mtime_ns,
            self.new.ctime_ns,
            self.cur.mtime_ns,
            self.cur.ctime_ns,
        ]
        .into_iter()
        .max()
        .unwrap_or(i64::MAX)
    }

    /// How long after `at` these stamps become settled; zero if they are.
    pub fn settles_in(&self, at: SystemTime) -> Duration {
        let settled_from = self.newest_ns().saturating_add(nanos(self.margin()));
        let at = system_ns(at);
        if at > settled_from {
            Duration::ZERO
        } else {
            Duration::from_nanos(settled_from.saturating_sub(at).max(1).unsigned_abs())
        }
    }

    /// Whether the stamps were settled at `at` (rule 2).
    pub fn settled_at(&self, at: SystemTime) -> bool {
        self.settles_in(at).is_zero()
    }

    /// The times to store as proof (rule 4): the ctimes.
    pub fn times(&self) -> DirTimes {
        DirTimes {
            new_ns: self.new.ctime_ns,
            cur_ns: self.cur.ctime_ns,
        }
    }
}

/// What is stored between runs to skip an unchanged folder: the ctimes of
/// `new/` and `cur/` in nanoseconds, from a stable listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirTimes {
    /// ctime of `new/`.
    pub new_ns: i64,
    /// ctime of `cur/`.
    pub cur_ns: i64,
}

/// Rule 5: whether `current` proves nothing changed since `stored`.
pub(crate) fn unchanged(current: &Stamps, stored: DirTimes, now: SystemTime) -> bool {
    current.times() == stored && current.settled_at(now)
}

fn to_ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A system time in nanoseconds since the epoch (negative before it).
pub(crate) fn system_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => nanos(d),
        Err(e) => -nanos(e.duration()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(ns: i64) -> Stamps {
        let d = DirStamp {
            mtime_ns: ns,
            ctime_ns: ns,
        };
        Stamps { new: d, cur: d }
    }

    fn at(ns: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(ns.unsigned_abs())
    }

    #[test]
    fn margins_follow_the_resolution() {
        assert_eq!(stamps(1_700_000_000_123_456_789).margin(), FINE_MARGIN);
        assert_eq!(stamps(1_700_000_000_000_000_000).margin(), COARSE_MARGIN);
    }

    #[test]
    fn a_same_second_change_is_not_proof() {
        let base = 1_700_000_000_000_000_000;
        let coarse = stamps(base);
        // Half a second later, a whole-second stamp proves nothing.
        assert!(!coarse.settled_at(at(base + 500_000_000)));
        assert!(!unchanged(&coarse, coarse.times(), at(base + 500_000_000)));
        assert!(coarse.settled_at(at(base + 2_000_000_001)));
        assert!(unchanged(&coarse, coarse.times(), at(base + 3_000_000_000)));
        let fine = stamps(base + 1);
        assert!(!fine.settled_at(at(base + 50_000_000)));
        assert!(fine.settled_at(at(base + 200_000_000)));
        assert_eq!(
            fine.settles_in(at(base + 50_000_001)),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn any_difference_is_a_change() {
        let base = stamps(1_700_000_000_123_456_789);
        let later = at(1_800_000_000_000_000_000);
        let mut moved = base;
        moved.cur.ctime_ns += 1;
        assert!(!unchanged(&moved, base.times(), later));
        assert!(unchanged(&base, base.times(), later));
        // A stamp from the future (a skewed clock) is never settled.
        let future = stamps(1_900_000_000_000_000_000);
        assert!(!unchanged(&future, future.times(), later));
    }
}
