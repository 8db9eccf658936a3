//! Replaying a fuzzer's corpus on stable, in ordinary tests: every input
//! of a corpus directory (`fuzz/corpus/<target>` of cargo-fuzz), then a
//! bounded number of random mutations of each (bit flips, byte changes,
//! cuts, repeats and splices with another input), seeded, so a failure
//! repeats. Coverage-guided runs (`scripts/fuzz`, nightly) grow the
//! corpus; this keeps every test run exercising it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Runs `target` on every file in `corpus` and on `rounds` mutations of
/// each; returns how many inputs it ran. Panics (naming the input's file)
/// if the corpus is missing or empty.
pub fn replay(corpus: &Path, rounds: u32, seed: u64, target: impl Fn(&[u8])) -> usize {
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", corpus.display()))
        .flatten()
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).ok()?,
            ))
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "corpus {} is empty", corpus.display());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ran = 0;
    for (name, input) in &inputs {
        target(input);
        ran += 1;
        for round in 0..rounds {
            let other = &inputs[rng.gen_range(0..inputs.len())].1;
            let mutated = mutate(&mut rng, input, other);
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&mutated)));
            if let Err(panic) = outcome {
                eprintln!("input {name}, mutation {round} (seed {seed}): {mutated:?}");
                std::panic::resume_unwind(panic);
            }
            ran += 1;
        }
    }
    ran
}

/// One to four random edits of `input`.
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let at = if data.is_empty() {
            0
        } else {
            rng.gen_range(0..data.len())
        };
        match rng.gen_range(0..6) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.gen_range(0..8),
            1 if !data.is_empty() => data[at] = interesting(rng),
            2 => data.truncate(at),
            3 => {
                let end = (at + rng.gen_range(1..=16)).min(data.len());
                let piece = data[at..end].to_vec();
                data.splice(at..at, piece);
            }
            4 if !other.is_empty() => {
                let from = rng.gen_range(0..other.len());
                let end = (from + rng.gen_range(1..=64)).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
            _ => data.insert(at, interesting(rng)),
        }
    }
    data
}

/// A byte that IMAP and Maildir parsers care about.
fn interesting(rng: &mut ChaCha8Rng) -> u8 {
    const BYTES: &[u8] = b"\r\n{}()[]\"\\ *+-:,./%&0123456789\x00\xff";
    BYTES[rng.gen_range(0..BYTES.len())]
}
