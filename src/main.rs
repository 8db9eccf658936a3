//! The `ferry` command: IMAP <-> Maildir sync.
//!
//! The binary is glue: arguments, config, building the stores, progress and
//! exit codes. Everything else lives in the crates under `crates/`.

fn main() {
    println!("ferry {}", env!("CARGO_PKG_VERSION"));
}
