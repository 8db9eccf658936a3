//! "Another client": acts on a test server as a phone or webmail would.
//!
//! [`Client`] is a deliberately simple, synchronous IMAP client, independent
//! of ferry-imap (the client under test must not check itself): one command
//! at a time, plain IMAP, no pipelining. Tests use it to set up scenarios
//! (append with flags and internal date, set and clear flags, expunge, move,
//! create/rename/delete folders). [`Dovecot`] adds what only
//! the server can do through `doveadm`: read a folder back with GUIDs, reset
//! UIDVALIDITY.
//!
//! Mailbox names are wire names: a test that uses non-ASCII names passes
//! them in modified UTF-7.

use crate::dovecot::{Dovecot, TestUser};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One tagged command's result: the untagged lines and the tagged line.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// Untagged and continuation lines, literals inlined, CRLF removed.
    pub untagged: Vec<String>,
    /// The tagged completion line, without the tag.
    pub tagged: String,
}

impl Response {
    /// The argument list of the first `[CODE a b c]` response code named `code`.
    pub fn code(&self, code: &str) -> Option<Vec<String>> {
        let start = self.tagged.find(&format!("[{code} "))? + code.len() + 2;
        let end = start + self.tagged[start..].find(']')?;
        Some(
            self.tagged[start..end]
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        )
    }
}

/// A logged-in plain-IMAP client.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_tag: u32,
}

impl Client {
    /// Connects to `addr` and logs in as `user`.
    pub fn login(addr: SocketAddr, user: TestUser) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let writer = stream.try_clone()?;
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
            next_tag: 1,
        };
        let greeting = client.read_line()?;
        if !greeting.starts_with("* OK") {
            return Err(io::Error::other(format!("unexpected greeting: {greeting}")));
        }
        client.run(&format!(
            "LOGIN {} {}",
            quote(user.name),
            quote(user.password)
        ))?;
        Ok(client)
    }

    /// Sends one command (without tag and CRLF) and waits for its tagged
    /// completion; NO and BAD become errors.
    pub fn run(&mut self, command: &str) -> io::Result<Response> {
        let tag = self.send(command)?;
        self.finish(&tag)
    }

    fn send(&mut self, command: &str) -> io::Result<String> {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())?;
        Ok(tag)
    }

    fn finish(&mut self, tag: &str) -> io::Result<Response> {
        let mut response = Response::default();
        loop {
            let line = self.read_line()?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                response.tagged = rest.to_string();
                if rest.starts_with("OK") {
                    return Ok(response);
                }
                return Err(io::Error::other(format!("server answered: {rest}")));
            }
            response.untagged.push(line);
        }
    }

    /// Reads one response line, inlining any literals it carries.
    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        loop {
            let start = line.len();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed",
                ));
            }
            if !line.ends_with(b"\r\n") {
                continue;
            }
            line.truncate(line.len() - 2);
            match literal_length(&line[start..]) {
                Some(n) => {
                    let mut literal = vec![0; n];
                    self.reader.read_exact(&mut literal)?;
                    line.extend_from_slice(b"\r\n");
                    line.extend_from_slice(&literal);
                }
                None => return Ok(String::from_utf8_lossy(&line).into_owned()),
            }
        }
    }

    /// Creates a folder.
    pub fn create(&mut self, mailbox: &str) -> io::Result<()> {
        self.run(&format!("CREATE {}", quote(mailbox))).map(drop)
    }

    /// Deletes a folder.
    pub fn delete(&mut self, mailbox: &str) -> io::Result<()> {
        self.run(&format!("DELETE {}", quote(mailbox))).map(drop)
    }

    /// Renames a folder.
    pub fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.run(&format!("RENAME {} {}", quote(from), quote(to)))
            .map(drop)
    }

    /// The names of all folders.
    pub fn list(&mut self) -> io::Result<Vec<String>> {
        let response = self.run("LIST \"\" \"*\"")?;
        Ok(response
            .untagged
            .iter()
            .filter_map(|l| list_name(l))
            .collect())
    }

    /// Appends `message` to `mailbox` with IMAP `flags` (e.g. `"\\Seen"`)
    /// and, when given, an internal date in Unix seconds. Returns the new
    /// UID when the server reports APPENDUID.
    pub fn append(
        &mut self,
        mailbox: &str,
        flags: &[&str],
        internal_date: Option<i64>,
        message: &[u8],
    ) -> io::Result<Option<u32>> {
        let date = internal_date
            .map(|t| format!(" \"{}\"", imap_date(t)))
            .unwrap_or_default();
        let command = format!(
            "APPEND {} ({}){date} {{{}}}",
            quote(mailbox),
            flags.join(" "),
            message.len()
        );
        let tag = self.send(&command)?;
        let go_ahead = self.read_line()?;
        if !go_ahead.starts_with('+') {
            return Err(io::Error::other(format!("APPEND refused: {go_ahead}")));
        }
        self.writer.write_all(message)?;
        self.writer.write_all(b"\r\n")?;
        let response = self.finish(&tag)?;
        Ok(response
            .code("APPENDUID")
            .and_then(|args| args.get(1).and_then(|uid| uid.parse().ok())))
    }

    /// Selects `mailbox` read-write.
    pub fn select(&mut self, mailbox: &str) -> io::Result<Response> {
        self.run(&format!("SELECT {}", quote(mailbox)))
    }

    /// Adds `flags` to the messages `uids` of `mailbox`.
    pub fn add_flags(&mut self, mailbox: &str, uids: &[u32], flags: &[&str]) -> io::Result<()> {
        self.store(mailbox, uids, "+FLAGS.SILENT", flags)
    }

    /// Clears `flags` from the messages `uids` of `mailbox`.
    pub fn remove_flags(&mut self, mailbox: &str, uids: &[u32], flags: &[&str]) -> io::Result<()> {
        self.store(mailbox, uids, "-FLAGS.SILENT", flags)
    }

    fn store(&mut self, mailbox: &str, uids: &[u32], op: &str, flags: &[&str]) -> io::Result<()> {
        self.select(mailbox)?;
        self.run(&format!(
            "UID STORE {} {op} ({})",
            uid_set(uids),
            flags.join(" ")
        ))
        .map(drop)
    }

    /// Marks `uids` \Deleted and expunges exactly those (UID EXPUNGE).
    pub fn expunge(&mut self, mailbox: &str, uids: &[u32]) -> io::Result<()> {
        self.add_flags(mailbox, uids, &["\\Deleted"])?;
        self.run(&format!("UID EXPUNGE {}", uid_set(uids)))
            .map(drop)
    }

    /// Moves `uids` from `mailbox` to `target` (UID MOVE); returns the
    /// COPYUID pairs (old UID, new UID) when the server reports them.
    pub fn move_messages(
        &mut self,
        mailbox: &str,
        uids: &[u32],
        target: &str,
    ) -> io::Result<Vec<(u32, u32)>> {
        self.select(mailbox)?;
        let response = self.run(&format!("UID MOVE {} {}", uid_set(uids), quote(target)))?;
        let copyuid = response
            .untagged
            .iter()
            .find_map(|line| line.strip_prefix("* OK [COPYUID ").map(str::to_string));
        Ok(copyuid.map(|args| parse_copyuid(&args)).unwrap_or_default())
    }

    /// Logs out.
    pub fn logout(mut self) -> io::Result<()> {
        self.run("LOGOUT").map(drop)
    }
}

/// A message as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMessage {
    /// Its UID.
    pub uid: u32,
    /// Its flags, as IMAP names, sorted (`\Recent` left out).
    pub flags: Vec<String>,
    /// Its Message-ID header, angle brackets included.
    pub message_id: String,
    /// Its RFC822.SIZE (CRLF line endings).
    pub size: u64,
    /// Dovecot's GUID: unchanged by MOVE, new for every APPEND.
    pub guid: String,
}

impl Dovecot {
    /// Reads back the messages of `mailbox` of `user`, in UID order.
    pub fn messages(&self, user: TestUser, mailbox: &str) -> io::Result<Vec<ServerMessage>> {
        let out = self.doveadm(&[
            "-f",
            "tab",
            "fetch",
            "-u",
            user.name,
            "uid flags guid size.virtual hdr.message-id",
            "mailbox",
            mailbox,
        ])?;
        out.lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(parse_fetch_row)
            .collect()
    }

    /// The UIDVALIDITY, UIDNEXT and message count of `mailbox` of `user`.
    pub fn mailbox_status(&self, user: TestUser, mailbox: &str) -> io::Result<(u32, u32, u32)> {
        let out = self.doveadm(&[
            "-f",
            "tab",
            "mailbox",
            "status",
            "-u",
            user.name,
            "uidvalidity uidnext messages",
            mailbox,
        ])?;
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let row: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let field = |name: &str| -> io::Result<u32> {
            header
                .iter()
                .position(|h| h.trim() == name)
                .and_then(|i| row.get(i)?.trim().parse().ok())
                .ok_or_else(|| io::Error::other(format!("no {name} in doveadm output: {out}")))
        };
        Ok((field("uidvalidity")?, field("uidnext")?, field("messages")?))
    }

    /// Gives `mailbox` of `user` a new UIDVALIDITY (the UIDs stay).
    pub fn reset_uidvalidity(
        &self,
        user: TestUser,
        mailbox: &str,
        validity: u32,
    ) -> io::Result<()> {
        let validity = validity.to_string();
        self.doveadm(&[
            "mailbox",
            "update",
            "-u",
            user.name,
            "--uid-validity",
            &validity,
            mailbox,
        ])
        .map(drop)
    }
}

fn parse_fetch_row(row: &str) -> io::Result<ServerMessage> {
    let bad = || io::Error::other(format!("unexpected doveadm fetch row: {row:?}"));
    let fields: Vec<&str> = row.split('\t').collect();
    let [uid, flags, guid, size, message_id] = fields[..] else {
        return Err(bad());
    };
    let mut flags: Vec<String> = flags
        .split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(str::to_string)
        .collect();
    flags.sort();
    Ok(ServerMessage {
        uid: uid.trim().parse().map_err(|_| bad())?,
        flags,
        message_id: message_id.trim().to_string(),
        size: size.trim().parse().map_err(|_| bad())?,
        guid: guid.trim().to_string(),
    })
}

fn parse_copyuid(args: &str) -> Vec<(u32, u32)> {
    let args = args.split(']').next().unwrap_or_default();
    let parts: Vec<&str> = args.split_whitespace().collect();
    let [_, from, to] = parts[..] else {
        return Vec::new();
    };
    expand_set(from).into_iter().zip(expand_set(to)).collect()
}

fn expand_set(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|part| {
            let (a, b) = part.split_once(':').unwrap_or((part, part));
            let (a, b): (u32, u32) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
            a.min(b)..=a.max(b)
        })
        .collect()
}

fn list_name(line: &str) -> Option<String> {
    let rest = line.strip_prefix("* LIST ")?;
    let after_attrs = &rest[rest.find(')')? + 1..];
    let mut parts = after_attrs.trim_start().splitn(2, ' ');
    let _delimiter = parts.next()?;
    let name = parts.next()?.trim();
    Some(
        match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => match name.split_once("\r\n") {
                Some((_, literal)) => literal.to_string(),
                None => name.to_string(),
            },
        },
    )
}

fn literal_length(line: &[u8]) -> Option<usize> {
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = line.get(open + 1..line.len().checked_sub(1)?)?;
    if line.last() != Some(&b'}') {
        return None;
    }
    std::str::from_utf8(inner)
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// An IMAP quoted string.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Unix seconds as an IMAP date-time in UTC (`"01-Jan-2024 00:00:00 +0000"`).
pub fn imap_date(unix: i64) -> String {
    ferry_core::date::format_imap_date(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(literal_length(b"a APPEND x {5+}"), Some(5));
        assert_eq!(literal_length(b"* OK done"), None);
    }

    #[test]
    fn list_names() {
        assert_eq!(
            list_name("* LIST (\\HasNoChildren) \"/\" \"A b\""),
            Some("A b".into())
        );
        assert_eq!(
            list_name("* LIST (\\HasNoChildren) \"/\" INBOX"),
            Some("INBOX".into())
        );
    }

    #[test]
    fn copyuid_pairs() {
        assert_eq!(
            parse_copyuid("7 3:4,9 20:22]"),
            vec![(3, 20), (4, 21), (9, 22)]
        );
    }
}
