//! A latency proxy on the command line, for profiling a sync by hand
//! against a server "far away" (the benchmark's rtt25 profile).
//!
//! `cargo run --release -p ferry-testkit --example latency_proxy UPSTREAM_PORT [ONE_WAY_MS]`
//! forwards a free port on 127.0.0.1 to 127.0.0.1:UPSTREAM_PORT, adding
//! ONE_WAY_MS (default 12.5) each way, prints the port, and runs until
//! killed.

use ferry_testkit::proxy::{FaultProxy, Faults};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let upstream: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: latency_proxy UPSTREAM_PORT [ONE_WAY_MS]"))?;
    let one_way: f64 = args.next().and_then(|m| m.parse().ok()).unwrap_or(12.5);
    let faults = Faults::default()
        .with_latency(Duration::from_secs_f64(one_way / 1000.0))
        .with_count_only();
    let proxy = FaultProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, upstream)), faults)?;
    println!("{}", proxy.port());
    loop {
        std::thread::park();
    }
}
