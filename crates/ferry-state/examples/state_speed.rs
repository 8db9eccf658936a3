//! Times the state operations a large sync leans on, for release numbers:
//!
//! ```text
//! cargo run --release -p ferry-state --example state_speed [DIR [BATCH]]
//! ```
//!
//! DIR (default: the system temp dir) should be on the disk the state will
//! live on: every commit is an fsync, so a tmpfs would flatter the numbers.
//! BATCH (default 1000) is the number of messages per journalled batch.
//!
//! Each line shows wall time and, on Linux, the CPU time the process spent
//! (from `/proc/self/schedstat`), which a busy machine disturbs less.

use ferry_core::{Flag, PerSide, Side, Uid};
use ferry_state::{
    Fingerprint, FolderId, IntentAction, MessageKey, NewIntent, Pair, PairChange, State,
};
use std::error::Error;
use std::time::{Duration, Instant};

const PAIRS: u32 = 100_000;
const DEFAULT_BATCH: u32 = 1_000;

fn main() -> Result<(), Box<dyn Error>> {
    let base = std::env::args_os()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let batch = match std::env::args().nth(2) {
        Some(text) => text.parse()?,
        None => DEFAULT_BATCH,
    };
    let dir = tempfile::tempdir_in(base)?;
    let path = dir.path().join("speed.sqlite");
    let mut state = State::open(&path)?;
    let names = |name: &str| PerSide::new(name.to_string(), name.to_string());
    let bulk = state.add_folder(&names("Bulk"))?;
    let journalled = state.add_folder(&names("Journalled"))?;

    let pairs: Vec<Pair> = (1..=PAIRS).map(|n| pair(bulk, n)).collect();
    let record = time(|| state.insert_pairs(&pairs).map(drop))?;
    report(&format!("record {PAIRS} pairs, one batch"), record);
    let load = time(|| state.load_pairs(bulk).map(drop))?;
    report(&format!("load {PAIRS} pairs"), load);
    let journal = time(|| journal_cycle(&mut state, journalled, batch))?;
    report(
        &format!(
            "journal {PAIRS} deliveries in batches of {batch} ({} transactions)",
            2 * PAIRS.div_ceil(batch)
        ),
        journal,
    );
    let status = time(|| state.status().map(drop))?;
    report(&format!("status of {} pairs", 2 * PAIRS), status);
    drop(state);
    let reopen = time(|| State::open(&path).map(drop))?;
    report("reopen", reopen);
    Ok(())
}

fn report(what: &str, (wall, cpu): (Duration, Option<Duration>)) {
    // schedstat moves at scheduler events: too coarse for the shortest steps.
    let cpu = cpu
        .filter(|cpu| !cpu.is_zero())
        .map_or_else(String::new, |cpu| format!(" (CPU {cpu:.1?})"));
    println!("{what:<58} {wall:>9.1?}{cpu}");
}

/// The engine's cycle: record a batch of intents, "deliver", complete them
/// with their pairs.
fn journal_cycle(state: &mut State, folder: FolderId, batch: u32) -> ferry_state::Result<()> {
    for start in (1..=PAIRS).step_by(batch.max(1) as usize) {
        let end = (start + batch).min(PAIRS + 1);
        let drafts: Vec<Pair> = (start..end).map(|n| pair(folder, n)).collect();
        let intents: Vec<NewIntent> = drafts
            .iter()
            .map(|draft| NewIntent {
                side: Side::Near,
                folder,
                pair: None,
                action: IntentAction::Deliver {
                    pair: draft.clone(),
                },
            })
            .collect();
        let ids = state.record_intents(&intents)?;
        let completions: Vec<_> = ids
            .into_iter()
            .zip(drafts)
            .map(|(id, draft)| (id, PairChange::Insert(draft)))
            .collect();
        state.complete_batch(&completions)?;
    }
    Ok(())
}

fn pair(folder: FolderId, n: u32) -> Pair {
    let mut pair = Pair::new(folder);
    pair.keys = PerSide::new(
        Uid::new(n).ok().map(MessageKey::Uid),
        Some(MessageKey::Name(
            format!("1700000000.M{n}P4242.host.example").into(),
        )),
    );
    pair.flags.insert(Flag::Seen);
    pair.size = Some(u64::from(2_000 + n % 50_000));
    pair.internal_date = Some(1_700_000_000 + i64::from(n));
    pair.message_id = Some(format!("<{n}.1700000000@mail.example.com>"));
    let mut digest = [0x5a; 32];
    digest[..4].copy_from_slice(&n.to_be_bytes());
    pair.fingerprint = Some(Fingerprint::from_bytes(digest));
    pair
}

/// Wall time and CPU time of `f`.
fn time<E>(f: impl FnOnce() -> Result<(), E>) -> Result<(Duration, Option<Duration>), E> {
    let (started, cpu) = (Instant::now(), cpu_time());
    f()?;
    let spent = cpu_time()
        .zip(cpu)
        .map(|(after, before)| after.saturating_sub(before));
    Ok((started.elapsed(), spent))
}

/// CPU time of this (single-threaded) process so far: the first field of
/// `/proc/self/schedstat`, in nanoseconds.
fn cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
