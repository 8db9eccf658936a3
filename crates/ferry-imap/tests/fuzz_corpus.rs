//! The fuzzers' corpus (`fuzz/corpus`), replayed and mutated on stable:
//! see `ferry_testkit::fuzz`.

use ferry_imap::proto::fuzzing;
use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn the_response_reader_survives_its_fuzz_corpus_and_mutations() {
    let ran = ferry_testkit::fuzz::replay(&corpus("imap_responses"), 40, 1, fuzzing::responses);
    eprintln!("{ran} inputs");
}

#[test]
fn mailbox_names_survive_their_fuzz_corpus_and_mutations() {
    let ran = ferry_testkit::fuzz::replay(&corpus("mailbox_names"), 40, 2, fuzzing::mailbox_name);
    eprintln!("{ran} inputs");
}
