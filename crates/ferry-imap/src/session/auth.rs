//! Logging in: LOGIN and AUTHENTICATE (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER).
//!
//! Credentials are sent only on a connection that is encrypted or that the
//! user explicitly configured as plaintext; the commands are marked
//! sensitive, so traces show `AUTHENTICATE <redacted>`. A refusal becomes
//! [`Error::AuthenticationFailed`] naming the user, never the secret.

use super::{Session, TraceDirection};
use crate::error::{Error, Result};
use crate::options::{AuthMechanism, Credentials};
use crate::proto::command::Command;
use crate::proto::framing::KeepInMemory;
use crate::proto::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

impl Session {
    /// Logs in with `credentials`; asks for capabilities again afterwards
    /// unless the server sent them with the OK.
    pub fn login(&mut self, credentials: &Credentials) -> Result<()> {
        if self.authenticated {
            return Ok(());
        }
        if self.has_capability("LOGINDISABLED") && !self.transport.is_tls() {
            return Err(Error::Unsupported {
                what: format!(
                    "{} refuses to log in without TLS (LOGINDISABLED); set tls = \"starttls\" or \"implicit\"",
                    self.options.host
                ),
            });
        }
        let updates_before = self.capability_updates;
        let result = match self.choose_mechanism(credentials.mechanism)? {
            Chosen::LoginCommand => self.login_command(credentials),
            Chosen::Sasl(mechanism) => self.authenticate(mechanism, credentials),
        };
        match result {
            Ok(()) => {}
            Err(Error::No { text, .. }) => {
                return Err(Error::AuthenticationFailed {
                    user: credentials.user.clone(),
                    text,
                });
            }
            Err(e) => return Err(e),
        }
        self.authenticated = true;
        // Capabilities change at login; ask unless the server just sent them.
        if self.capability_updates == updates_before {
            self.refresh_capabilities()?;
        }
        Ok(())
    }

    fn choose_mechanism(&self, wanted: AuthMechanism) -> Result<Chosen> {
        let offers = |m: &str| self.has_capability(&format!("AUTH={m}"));
        let missing = |m: &str| Error::Unsupported {
            what: format!(
                "{} does not offer AUTH={m}; set auth = \"auto\" or another mechanism it lists (see `ferry doctor`)",
                self.options.host
            ),
        };
        Ok(match wanted {
            AuthMechanism::Auto if offers("PLAIN") => Chosen::Sasl(Sasl::Plain),
            AuthMechanism::Auto => Chosen::LoginCommand,
            AuthMechanism::Plain if offers("PLAIN") => Chosen::Sasl(Sasl::Plain),
            AuthMechanism::Plain => return Err(missing("PLAIN")),
            AuthMechanism::Login if offers("LOGIN") => Chosen::Sasl(Sasl::Login),
            AuthMechanism::Login => Chosen::LoginCommand,
            AuthMechanism::XOAuth2 if offers("XOAUTH2") => Chosen::Sasl(Sasl::XOAuth2),
            AuthMechanism::XOAuth2 => return Err(missing("XOAUTH2")),
            AuthMechanism::OAuthBearer if offers("OAUTHBEARER") => Chosen::Sasl(Sasl::OAuthBearer),
            AuthMechanism::OAuthBearer => return Err(missing("OAUTHBEARER")),
        })
    }

    fn login_command(&mut self, credentials: &Credentials) -> Result<()> {
        let command = Command::new("LOGIN")
            .string(credentials.user.as_bytes())
            .string(credentials.secret.expose().as_bytes())
            .sensitive();
        self.run(command).map(drop)
    }

    fn authenticate(&mut self, mechanism: Sasl, credentials: &Credentials) -> Result<()> {
        let responses = mechanism.responses(credentials, &self.options.host, self.options.port);
        let sasl_ir = self.has_capability("SASL-IR") && mechanism != Sasl::Login;
        let mut command = Command::new("AUTHENTICATE")
            .raw(mechanism.name())
            .sensitive();
        let mut pending = responses.into_iter();
        if sasl_ir {
            if let Some(first) = pending.next() {
                command = command.raw(&encode(&first));
            }
        }
        let tag = self.send(command)?;
        loop {
            match self.read_response(&mut KeepInMemory, "AUTHENTICATE")? {
                Response::Continue { .. } => {
                    // A challenge after all responses is an error report
                    // (XOAUTH2, OAUTHBEARER): answer it so the NO follows.
                    let reply = match pending.next() {
                        Some(data) => encode(&data),
                        None => mechanism.error_ack().to_string(),
                    };
                    self.trace_line(TraceDirection::Sent, "<redacted SASL response>");
                    self.write(format!("{reply}\r\n").as_bytes(), "AUTHENTICATE")?;
                    self.flush("AUTHENTICATE")?;
                }
                Response::Tagged { tag: t, completion } if t == tag => {
                    self.completed.insert(t, completion);
                    return self.wait(&tag, &mut Some, &mut KeepInMemory).map(drop);
                }
                Response::Tagged { tag: t, .. } => {
                    return Err(crate::proto::framing::protocol(
                        "a completion for another tag during AUTHENTICATE",
                        t.as_bytes(),
                    ));
                }
                Response::Untagged(u) => self.note_untagged(u, None),
            }
        }
    }
}

enum Chosen {
    LoginCommand,
    Sasl(Sasl),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sasl {
    Plain,
    Login,
    XOAuth2,
    OAuthBearer,
}

impl Sasl {
    fn name(self) -> &'static str {
        match self {
            Sasl::Plain => "PLAIN",
            Sasl::Login => "LOGIN",
            Sasl::XOAuth2 => "XOAUTH2",
            Sasl::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The client's responses, in order (before base64).
    fn responses(self, credentials: &Credentials, host: &str, port: u16) -> Vec<Vec<u8>> {
        let user = credentials.user.as_str();
        let secret = credentials.secret.expose();
        match self {
            Sasl::Plain => vec![format!("\0{user}\0{secret}").into_bytes()],
            Sasl::Login => vec![user.as_bytes().to_vec(), secret.as_bytes().to_vec()],
            Sasl::XOAuth2 => {
                vec![format!("user={user}\x01auth=Bearer {secret}\x01\x01").into_bytes()]
            }
            Sasl::OAuthBearer => vec![
                format!(
                    "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {secret}\x01\x01",
                    gs2_escape(user)
                )
                .into_bytes(),
            ],
        }
    }

    /// What to send when the server answers with an error challenge.
    fn error_ack(self) -> &'static str {
        match self {
            Sasl::OAuthBearer => "AQ==",
            _ => "",
        }
    }
}

/// RFC 5801 saslname escaping: `,` and `=`.
fn gs2_escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn encode(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_string()
    } else {
        BASE64.encode(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn creds() -> Credentials {
        Credentials {
            user: "me,x=y".into(),
            secret: Secret::new("tok"),
            mechanism: AuthMechanism::Auto,
        }
    }

    #[test]
    fn sasl_payloads() {
        assert_eq!(
            Sasl::Plain.responses(&creds(), "h", 993),
            vec![b"\0me,x=y\0tok".to_vec()]
        );
        assert_eq!(
            Sasl::XOAuth2.responses(&creds(), "h", 993),
            vec![b"user=me,x=y\x01auth=Bearer tok\x01\x01".to_vec()]
        );
        assert_eq!(
            Sasl::OAuthBearer.responses(&creds(), "imap.example.org", 993),
            vec![
                b"n,a=me=2Cx=3Dy,\x01host=imap.example.org\x01port=993\x01auth=Bearer tok\x01\x01"
                    .to_vec()
            ]
        );
        assert_eq!(encode(b""), "=");
    }
}
