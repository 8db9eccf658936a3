//! Opening a session: greeting, STARTTLS, COMPRESS.
//!
//! STARTTLS never falls back to plaintext: a server without STARTTLS, a
//! PREAUTH greeting where TLS is required, or bytes received between the
//! STARTTLS OK and the handshake abort the connection before any credential
//! is sent. Capabilities are asked again after the handshake, because what
//! a server said in plaintext may have been forged.

use super::{Session, TraceSink};
use crate::error::{Error, Result};
use crate::options::{CompressPolicy, ServerOptions, TlsMode};
use crate::proto::command::Command;
use crate::proto::framing::{self, Framer, KeepInMemory, Limits};
use crate::proto::response::{Response, ResponseCode, Status, Untagged};
use crate::transport::Transport;
use std::collections::{HashMap, VecDeque};

impl Session {
    /// Connects, reads the greeting, and (for `tls = "starttls"`) upgrades
    /// the connection; the session is ready to log in (or already logged in
    /// after PREAUTH).
    pub fn connect(options: &ServerOptions) -> Result<Session> {
        Self::connect_traced(options, None)
    }

    /// [`Session::connect`] with a trace sink installed from the first byte.
    pub fn connect_traced(options: &ServerOptions, trace: Option<TraceSink>) -> Result<Session> {
        let transport = Transport::connect(options)?;
        let limits = Limits {
            max_literal: options.max_literal,
            ..Limits::default()
        };
        let mut session = Session {
            transport,
            framer: Framer::new(limits),
            read_buf: vec![0u8; 64 << 10].into_boxed_slice(),
            options: options.clone(),
            next_tag: 1,
            capabilities: Vec::new(),
            authenticated: false,
            enabled: Vec::new(),
            verbs: HashMap::new(),
            completed: HashMap::new(),
            pending: VecDeque::new(),
            trace,
            bye: None,
            selected: None,
            capability_updates: 0,
            open_literal: None,
            poisoned: None,
        };
        let preauth = session.read_greeting()?;
        let tunnel = options.tunnel.is_some();
        if options.tls == TlsMode::StartTls && !tunnel {
            if preauth {
                return Err(Error::Tls {
                    host: options.host.clone(),
                    reason: "the server greeted with PREAUTH on a connection that must be upgraded with STARTTLS first; \
                             refusing to continue unencrypted"
                        .into(),
                    hint: Some("this can be an attack on the connection; check the server, or use tls = \"implicit\"".into()),
                });
            }
            session.start_tls()?;
        }
        session.authenticated = preauth;
        if session.capabilities.is_empty() {
            session.refresh_capabilities()?;
        }
        Ok(session)
    }

    /// Reads the greeting; returns whether it was PREAUTH.
    fn read_greeting(&mut self) -> Result<bool> {
        let response = self.read_response(&mut KeepInMemory, "the greeting")?;
        let Response::Untagged(Untagged::Status { status, code, text }) = response else {
            return Err(framing::protocol(
                "the server's first line is not a greeting",
                format!("{response:?}").as_bytes(),
            ));
        };
        if let Some(ResponseCode::Capability(caps)) = code {
            self.capabilities = caps;
        }
        match status {
            Status::Ok => Ok(false),
            Status::PreAuth => Ok(true),
            Status::Bye => Err(Error::Bye { text }),
            _ => Err(framing::protocol(
                "the greeting is neither OK, PREAUTH nor BYE",
                text.as_bytes(),
            )),
        }
    }

    fn start_tls(&mut self) -> Result<()> {
        if self.capabilities.is_empty() {
            self.refresh_capabilities()?;
        }
        if !self.has_capability("STARTTLS") {
            return Err(Error::Tls {
                host: self.options.host.clone(),
                reason: "the server does not offer STARTTLS, and tls = \"starttls\" forbids continuing in plaintext".into(),
                hint: Some("use tls = \"implicit\" (port 993) if the server supports it; an attacker may also have removed STARTTLS".into()),
            });
        }
        self.run(Command::new("STARTTLS"))?;
        if self.framer.buffered() > 0 {
            return Err(Error::Tls {
                host: self.options.host.clone(),
                reason: format!(
                    "{} bytes arrived after the STARTTLS OK and before the TLS handshake (a command injection attack)",
                    self.framer.buffered()
                ),
                hint: Some("nothing was sent; something between you and the server tampers with the connection: use tls = \"implicit\" (port 993) if the server supports it".into()),
            });
        }
        self.transport.start_tls(&self.options)?;
        self.capabilities.clear();
        self.refresh_capabilities()?;
        Ok(())
    }

    /// Switches on COMPRESS=DEFLATE when the server offers it and `policy`
    /// wants it (`Auto`: for hosts that are not loopback); returns whether
    /// compression is now on. Call it after login.
    pub fn compress(&mut self, policy: CompressPolicy) -> Result<bool> {
        let wanted = match policy {
            CompressPolicy::Never => false,
            CompressPolicy::Always => true,
            CompressPolicy::Auto => !self.transport.is_loopback() && self.options.tunnel.is_none(),
        };
        if !wanted || !self.has_capability("COMPRESS=DEFLATE") || self.transport.is_compressed() {
            return Ok(self.transport.is_compressed());
        }
        self.run(Command::new("COMPRESS").raw("DEFLATE"))?;
        if self.framer.buffered() > 0 {
            return Err(framing::protocol(
                "bytes arrived after the COMPRESS OK before compression started",
                b"",
            ));
        }
        self.transport.enable_deflate()?;
        Ok(true)
    }

    /// ID (RFC 2971): tells the server who we are, when it supports ID.
    pub fn id(&mut self, fields: &[(&str, &str)]) -> Result<()> {
        if !self.has_capability("ID") {
            return Ok(());
        }
        let list: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{} {}", quote(k), quote(v)))
            .collect();
        self.run(Command::new("ID").raw(&format!("({})", list.join(" "))))?;
        Ok(())
    }

    /// ENABLE (RFC 5161) for those of `extensions` the server advertises;
    /// returns what the server enabled.
    pub fn enable(&mut self, extensions: &[&str]) -> Result<Vec<String>> {
        let offered: Vec<&str> = extensions
            .iter()
            .copied()
            .filter(|e| self.has_capability(e))
            .collect();
        if offered.is_empty() || !self.has_capability("ENABLE") {
            return Ok(Vec::new());
        }
        let before = self.enabled.len();
        self.run(Command::new("ENABLE").raw(&offered.join(" ")))?;
        Ok(self.enabled[before..].to_vec())
    }

    /// [`Session::enable`], then [`Session::namespace`]; where the server
    /// has both ENABLE and NAMESPACE, the two are pipelined: one round trip
    /// for both (the server runs them in order, so NAMESPACE sees the
    /// extensions enabled).
    pub fn enable_and_namespace(
        &mut self,
        extensions: &[&str],
    ) -> Result<(Vec<String>, Namespaces)> {
        self.enable_and_namespace_then(extensions, |_| Ok(()))
            .map(|(enabled, spaces, ())| (enabled, spaces))
    }

    /// [`Session::enable_and_namespace`], with `then` run once both are
    /// sent and before their replies are read, so that what it sends
    /// (e.g. [`Session::send_list_with_status`]) shares their round trip.
    /// Where the two cannot be pipelined, `then` runs after both.
    pub fn enable_and_namespace_then<T>(
        &mut self,
        extensions: &[&str],
        then: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<(Vec<String>, Namespaces, T)> {
        let offered: Vec<&str> = extensions
            .iter()
            .copied()
            .filter(|e| self.has_capability(e))
            .collect();
        let both = ["ENABLE", "NAMESPACE"]
            .iter()
            .all(|c| self.has_capability(c));
        if offered.is_empty() || !both {
            let enabled = self.enable(extensions)?;
            let spaces = self.namespace()?;
            return Ok((enabled, spaces, then(self)?));
        }
        let before = self.enabled.len();
        let enable = self.send(Command::new("ENABLE").raw(&offered.join(" ")))?;
        let namespace = self.send(Command::new("NAMESPACE"))?;
        let after = then(self);
        let enabled = self.wait(&enable, &mut Some, &mut KeepInMemory);
        let mut spaces = Vec::new();
        let listed = self.wait(
            &namespace,
            &mut |u| match u {
                Untagged::Namespace(ns) => {
                    spaces = ns;
                    None
                }
                other => Some(other),
            },
            &mut KeepInMemory,
        );
        enabled?;
        listed?;
        Ok((self.enabled[before..].to_vec(), spaces, after?))
    }
}

/// The personal namespaces as (prefix, delimiter), as
/// [`Session::namespace`] returns them.
pub type Namespaces = Vec<(String, Option<char>)>;

/// A quoted string for simple ASCII values (ID fields).
fn quote(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
}
