//! Times a scan of a large folder, and delivery with fsync.
//!
//! ```text
//! cargo run --release -p ferry-maildir --example scan_speed [FILES] [DELIVERIES]
//! ```
//!
//! Creates FILES (default 100,000) empty message files in one folder's
//! `cur/` under a temporary directory, scans it cold (after dropping the
//! page cache, when allowed) and warm, then delivers DELIVERIES (default
//! 1,000) messages of 10 kB, each made durable on its own and then as one
//! batch. Prints the numbers; asserts nothing but the counts.

use std::fs::File;
use std::time::{Duration, Instant};

use ferry_maildir::{DirtyDirs, Folder, NewMessage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let files: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let deliveries: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    let dir = tempfile::tempdir()?;
    let folder = Folder::create(dir.path().join("big"))?;
    let started = Instant::now();
    for i in 0..files {
        File::create(
            folder
                .path()
                .join(format!("cur/{i}.M{i}P1Q{i}.speed,U={i}:2,S")),
        )?;
    }
    println!("created {files} files in {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(200)); // let the stamps settle

    let cold = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let (took, listing) = timed(|| folder.scan())?;
    assert_eq!(listing.len(), files);
    let label = if cold {
        "cold (page cache dropped)"
    } else {
        "first (cache not droppable)"
    };
    println!("scan {label}: {took:?}, stable {}", listing.is_stable());
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let (took, listing) = timed(|| folder.scan())?;
        assert_eq!(listing.len(), files);
        best = best.min(took);
    }
    println!("scan warm (best of 5): {best:?}");

    let inbox = Folder::create(dir.path().join("inbox"))?;
    let body = ferry_body(10_000);
    let (took, ()) = timed(|| {
        for _ in 0..deliveries {
            inbox.deliver(&NewMessage::new(), &body[..])?.sync()?;
        }
        Ok(())
    })?;
    report(
        "delivery, each durable on its own",
        deliveries,
        body.len(),
        took,
    );
    let (took, ()) = timed(|| {
        let mut batch = DirtyDirs::new();
        for _ in 0..deliveries {
            inbox
                .deliver(&NewMessage::new(), &body[..])?
                .defer(&mut batch);
        }
        batch.sync()
    })?;
    report(
        "delivery, one directory fsync per batch",
        deliveries,
        body.len(),
        took,
    );
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> ferry_maildir::Result<T>) -> ferry_maildir::Result<(Duration, T)> {
    let started = Instant::now();
    let value = f()?;
    Ok((started.elapsed(), value))
}

fn report(what: &str, count: usize, size: usize, took: Duration) {
    let secs = took.as_secs_f64();
    let mb = (count * size) as f64 / 1e6;
    println!(
        "{what}: {count} x {size} B in {took:?}: {:.0} messages/s, {:.1} MB/s",
        count as f64 / secs,
        mb / secs
    );
}

fn ferry_body(size: usize) -> Vec<u8> {
    let mut body = b"Subject: speed\r\n\r\n".to_vec();
    while body.len() < size {
        body.extend_from_slice(
            b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n",
        );
    }
    body
}
