//! The test kit every ferry integration test stands on.
//!
//! - [`Dovecot`]: a private Dovecot on free 127.0.0.1 ports in a temp dir
//!   (plain IMAP with STARTTLS, implicit TLS, a per-instance self-signed
//!   certificate), stopped and removed on drop, also when a test panics.
//! - [`Client`](client::Client): "another client" that acts on the server as a
//!   phone or webmail would (append, flags, expunge, move, folders), plus
//!   `doveadm` helpers for what only the server can do (UIDVALIDITY reset,
//!   GUIDs).
//! - [`corpus`]: a deterministic, realistic mail generator.
//! - [`proxy`]: a loopback fault proxy (cuts, stalls, latency, STARTTLS
//!   stripping, PREAUTH greetings, injected bytes, recording).
//! - [`fake_server`]: a scripted IMAP server for responses no real server
//!   sends.
//!
//! Everything binds loopback only. Nothing here is used outside tests.
//!
//! ```no_run
//! use ferry_testkit::{Dovecot, DovecotOptions};
//!
//! let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot starts");
//! let mut client = dovecot.client().expect("login");
//! client.create("Archive").expect("create");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod corpus;
mod dovecot;
pub mod fake_server;
pub mod fuzz;
pub mod proxy;

pub use dovecot::{Dovecot, DovecotOptions, Layout, TestUser, Tls, USER, USER2};
