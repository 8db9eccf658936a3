//! Integration tests of ferry-state, linked into one test binary.

mod common;
mod crash;
mod files;
mod fixtures;
mod folders;
mod intents;
mod pairs;
mod schema;
mod speed;
