//! Measures body FETCH throughput and peak memory against a private Dovecot.
//!
//! `cargo run --release -p ferry-imap --example fetch_throughput [COUNT] [SIZE]`
//!
//! Writes COUNT messages of SIZE bytes (default 2,000 x 50 KB) into a
//! private Dovecot's INBOX before it starts, then fetches every body over
//! plain IMAP and implicit TLS, pipelined (one UID FETCH per 2,000 UIDs) and
//! one message per round trip, and prints MB/s (median of 3 runs). Then it
//! fetches one 50 MiB message and prints the process's peak RSS (VmHWM),
//! which the server's memory does not count towards.

use ferry_imap::{
    AuthMechanism, BodyItem, Credentials, Secret, SelectOptions, ServerOptions, Session, TlsMode,
};
use ferry_testkit::corpus::{self, CorpusSpec, MaildirLayout, Sizes};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::error::Error;
use std::time::Instant;

fn session(dovecot: &Dovecot, tls: TlsMode) -> Result<Session, Box<dyn Error>> {
    let mut options = ServerOptions::new("127.0.0.1", tls);
    options.port = if tls == TlsMode::Implicit {
        dovecot.imaps_port()
    } else {
        dovecot.imap_port()
    };
    options.ca_file = Some(dovecot.cert_pem_path());
    let mut session = Session::connect(&options)?;
    session.login(&Credentials {
        user: USER.name.into(),
        secret: Secret::new(USER.password),
        mechanism: AuthMechanism::Auto,
    })?;
    session.select("INBOX", &SelectOptions::default())?;
    Ok(session)
}

/// Fetches every body; returns the bytes received.
fn fetch_all(session: &mut Session, uids: &[u32], pipelined: bool) -> Result<u64, Box<dyn Error>> {
    let mut total = 0u64;
    let batches: Vec<&[u32]> = if pipelined {
        vec![uids]
    } else {
        uids.chunks(1).collect()
    };
    for batch in batches {
        session.fetch_bodies(
            batch,
            BodyItem::Full,
            &mut |_| Ok(std::io::sink()),
            &mut |b| {
                total += b.len;
                Ok(())
            },
        )?;
    }
    Ok(total)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let spec = CorpusSpec {
        seed: 7,
        count,
        sizes: Sizes::Fixed(size),
        folders: vec![("INBOX".into(), 1)],
    };
    let options = DovecotOptions {
        compress: false,
        ..DovecotOptions::default()
    };
    let dovecot = Dovecot::start_with(options, |root| {
        corpus::write_maildir(&spec, root, MaildirLayout::MaildirPlusPlus).map(drop)
    })?;
    dovecot.doveadm(&["index", "-u", USER.name, "INBOX"])?;
    let uids: Vec<u32> = (1..=count as u32).collect();
    println!("{count} messages of {size} bytes, loopback, release build");
    for tls in [TlsMode::None, TlsMode::Implicit] {
        for pipelined in [true, false] {
            let mut rates = Vec::new();
            for _ in 0..3 {
                let mut s = session(&dovecot, tls)?;
                let start = Instant::now();
                let bytes = fetch_all(&mut s, &uids, pipelined)?;
                rates.push(bytes as f64 / 1e6 / start.elapsed().as_secs_f64());
            }
            println!(
                "{tls:?} pipelined={pipelined}: median {:.1} MB/s",
                median(rates)
            );
        }
    }
    drop(dovecot);
    let big = CorpusSpec {
        seed: 8,
        count: 1,
        sizes: Sizes::Fixed(50 << 20),
        folders: vec![("INBOX".into(), 1)],
    };
    let dovecot = Dovecot::start_with(DovecotOptions::default(), |root| {
        corpus::write_maildir(&big, root, MaildirLayout::MaildirPlusPlus).map(drop)
    })?;
    // Reset the peak (Linux clear_refs 5) so generating the corpus above,
    // in this same process, does not count.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let mut s = session(&dovecot, TlsMode::Implicit)?;
    let bytes = fetch_all(&mut s, &[1], true)?;
    println!(
        "50 MiB message over TLS: {bytes} bytes, peak RSS {} KiB before, {} KiB after",
        before,
        peak_rss_kib()
    );
    Ok(())
}
