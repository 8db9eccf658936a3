//! The fuzzer's corpus of names (`fuzz/corpus/maildir_names`), replayed
//! and mutated on stable: see `ferry_testkit::fuzz`.

use std::path::PathBuf;

#[test]
fn names_survive_their_fuzz_corpus_and_mutations() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/maildir_names");
    let ran = ferry_testkit::fuzz::replay(&corpus, 40, 3, ferry_maildir::fuzzing::names);
    eprintln!("{ran} inputs");
}
