//! The command line: what to measure (size, profiles, tools, repetitions,
//! COMPRESS) and where to put it.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// ferry beside mbsync, OfflineIMAP and interimap, each on its own private
/// Dovecot (127.0.0.1 only) serving an identical copy of one generated
/// corpus.
#[derive(Debug, Parser)]
#[command(name = "ferry-bench", version)]
pub struct Args {
    /// Corpus: "20k" (20,000 realistic messages in 3 folders, ~944 MiB),
    /// "100k" (100,000 small messages in 50 folders; peers then run only the
    /// no-op and flag phases), or a number of realistic messages.
    #[arg(long, default_value = "20k", value_parser = Size::parse)]
    pub size: Size,
    /// Network between the tools and Dovecot: loopback, or 25 ms round
    /// trips through an in-process latency proxy.
    #[arg(long, value_enum, default_value_t = ProfileChoice::Loopback)]
    pub profile: ProfileChoice,
    /// Tools to run, comma-separated; peers that are not installed are
    /// skipped (and named).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ferry,mbsync,offlineimap,interimap"
    )]
    pub tools: Vec<ToolName>,
    /// Timed runs of each repeatable phase (the initial sync runs once).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub reps: u32,
    /// Whether the server offers COMPRESS=DEFLATE; ferry's `compress` is set
    /// to match ("always" or "never"), mbsync and interimap use it whenever
    /// offered, OfflineIMAP never does.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    pub compress: OnOff,
    /// Work dir: corpus cache, configs, logs, results (default
    /// /tmp/ferry-bench-SIZE).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Seed of the corpus.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The ferry binary (default: the `ferry` next to this program).
    #[arg(long)]
    pub ferry: Option<PathBuf>,
}

/// The corpus to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    /// As given on the command line ("20k", "100k", "2000").
    pub label: String,
    /// Number of messages.
    pub count: usize,
    /// Small messages in many folders (the "100k" corpus) rather than
    /// realistic ones in three.
    pub many_small: bool,
}

impl Size {
    /// Parses "20k", "100k" or a plain number of realistic messages.
    pub fn parse(text: &str) -> Result<Size, String> {
        let (count, many_small) = match text {
            "20k" => (20_000, false),
            "100k" => (100_000, true),
            _ => match text.parse::<usize>() {
                Ok(n) if n > 0 => (n, false),
                _ => return Err(format!("{text:?}: expected 20k, 100k or a positive number")),
            },
        };
        Ok(Size {
            label: text.to_owned(),
            count,
            many_small,
        })
    }
}

/// `--profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileChoice {
    /// Tools talk to Dovecot directly over loopback.
    Loopback,
    /// 12.5 ms each way through the latency proxy.
    Rtt25,
    /// Loopback, then rtt25.
    Both,
}

impl ProfileChoice {
    /// The profiles to run, in order.
    pub fn profiles(self) -> Vec<Profile> {
        match self {
            ProfileChoice::Loopback => vec![Profile::Loopback],
            ProfileChoice::Rtt25 => vec![Profile::Rtt25],
            ProfileChoice::Both => vec![Profile::Loopback, Profile::Rtt25],
        }
    }
}

/// One network profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Straight to Dovecot.
    Loopback,
    /// Through the in-process proxy, 25 ms round trip.
    Rtt25,
}

impl Profile {
    /// The name used in output.
    pub fn label(self) -> &'static str {
        match self {
            Profile::Loopback => "loopback",
            Profile::Rtt25 => "rtt25",
        }
    }

    /// Delay added to each direction, if any.
    pub fn latency_each_way(self) -> Option<Duration> {
        match self {
            Profile::Loopback => None,
            Profile::Rtt25 => Some(Duration::from_micros(12_500)),
        }
    }
}

/// A sync tool under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum ToolName {
    /// ferry itself.
    Ferry,
    /// isync's mbsync.
    Mbsync,
    /// offlineimap3.
    Offlineimap,
    /// interimap (IMAP to a local Dovecot imap over a pipe).
    Interimap,
}

impl ToolName {
    /// The name used in output (and the peer's executable).
    pub fn label(self) -> &'static str {
        match self {
            ToolName::Ferry => "ferry",
            ToolName::Mbsync => "mbsync",
            ToolName::Offlineimap => "offlineimap",
            ToolName::Interimap => "interimap",
        }
    }

    /// The Debian package that provides a peer.
    pub fn package(self) -> &'static str {
        match self {
            ToolName::Ferry => "ferry",
            ToolName::Mbsync => "isync",
            ToolName::Offlineimap => "offlineimap3",
            ToolName::Interimap => "interimap",
        }
    }
}

/// `--compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// The server offers COMPRESS=DEFLATE.
    On,
    /// It does not.
    Off,
}

impl OnOff {
    /// Whether it is on.
    pub fn is_on(self) -> bool {
        self == OnOff::On
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let twenty = Size::parse("20k").expect("20k");
        assert_eq!((twenty.count, twenty.many_small), (20_000, false));
        let hundred = Size::parse("100k").expect("100k");
        assert_eq!((hundred.count, hundred.many_small), (100_000, true));
        let n = Size::parse("2000").expect("2000");
        assert_eq!(
            (n.count, n.many_small, n.label.as_str()),
            (2000, false, "2000")
        );
        assert!(Size::parse("0").is_err());
        assert!(Size::parse("5m").is_err());
    }

    #[test]
    fn arguments() {
        let args = Args::try_parse_from([
            "ferry-bench",
            "--size",
            "2000",
            "--profile",
            "both",
            "--tools",
            "ferry,mbsync",
            "--reps",
            "5",
            "--compress",
            "on",
        ])
        .expect("valid arguments");
        assert_eq!(args.tools, vec![ToolName::Ferry, ToolName::Mbsync]);
        assert_eq!(
            args.profile.profiles(),
            vec![Profile::Loopback, Profile::Rtt25]
        );
        assert!(args.compress.is_on());
        assert_eq!(args.reps, 5);
        assert!(Args::try_parse_from(["ferry-bench", "--reps", "0"]).is_err());
    }
}
