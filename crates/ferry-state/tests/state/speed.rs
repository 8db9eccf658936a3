//! 100,000 pairs recorded in one batch and loaded back, timed.
//!
//! The bound is generous (a debug build on a slow disk must not flake);
//! the number is printed (`--nocapture`) and the release numbers come from
//! `examples/state_speed.rs`.

use crate::common::{plain_pair, state_with_inbox};
use ferry_state::Pair;
use std::time::{Duration, Instant};

const PAIRS: u32 = 100_000;
const BOUND: Duration = Duration::from_secs(5);

#[test]
fn a_hundred_thousand_pairs_record_and_load_quickly() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let pairs: Vec<Pair> = (1..=PAIRS).map(|n| plain_pair(inbox, n)).collect();

    let started = Instant::now();
    let ids = state.insert_pairs(&pairs).expect("record");
    let recorded = started.elapsed();

    let started = Instant::now();
    let loaded = state.load_pairs(inbox).expect("load");
    let load = started.elapsed();

    eprintln!("100,000 pairs: recorded in {recorded:?}, loaded in {load:?}");
    assert_eq!(ids.len(), pairs.len());
    assert_eq!(loaded.len(), pairs.len());
    assert_eq!(loaded[PAIRS as usize - 1].pair, pairs[PAIRS as usize - 1]);
    assert!(recorded < BOUND, "recording took {recorded:?}");
    assert!(load < BOUND, "loading took {load:?}");
}
