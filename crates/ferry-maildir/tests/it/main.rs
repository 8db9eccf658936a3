//! Integration tests of ferry-maildir, linked into one binary.
//!
//! Some tests re-run this binary as a child process (crash tests, the small
//! tmpfs): the child is a test that does nothing unless its environment
//! variable is set.

mod common;
mod crash;
mod folders;
mod fuzz_corpus;
mod names;
mod ops;
mod scan;
mod watch;
