//! Measures how long a private Dovecot takes to start and to stop.
//!
//! `cargo run --release -p ferry-testkit --example dovecot_start_time [N]`
//! starts and stops N servers (default 10) one after another and prints the
//! median of each phase.

use ferry_testkit::{Dovecot, DovecotOptions};
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> std::io::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let (mut starts, mut logins, mut stops) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let begin = Instant::now();
        let dovecot = Dovecot::start(DovecotOptions::default())?;
        starts.push(begin.elapsed());
        let begin = Instant::now();
        dovecot.client()?.logout()?;
        logins.push(begin.elapsed());
        let begin = Instant::now();
        dovecot.stop();
        stops.push(begin.elapsed());
    }
    println!(
        "{runs} runs: start median {:?}, first login median {:?}, stop median {:?}",
        median(starts),
        median(logins),
        median(stops)
    );
    Ok(())
}
