//! Owned, validated responses, converted from imap-proto's borrowed types.
//!
//! imap-proto parses the grammar; this module turns its output into the
//! values the session acts on and checks what the grammar cannot: UIDs and
//! UIDVALIDITY are never zero, response codes imap-proto does not type
//! (MODIFIED, NOMODSEQ, CLOSED, the RFC 5530 codes, MAILBOXID) are parsed
//! here from the text, and anything unexpected is kept raw rather than
//! guessed at.

use crate::proto::sexp::{self, Token};
use imap_proto::types as ip;
use std::ops::RangeInclusive;

/// The status of a tagged or untagged status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// OK.
    Ok,
    /// NO.
    No,
    /// BAD.
    Bad,
    /// PREAUTH (greeting only).
    PreAuth,
    /// BYE.
    Bye,
}

/// A response code (`[CODE ...]` after the status).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseCode {
    /// ALERT: the text must be shown to the user.
    Alert,
    /// PARSE.
    Parse,
    /// READ-ONLY.
    ReadOnly,
    /// READ-WRITE.
    ReadWrite,
    /// TRYCREATE: the target mailbox does not exist.
    TryCreate,
    /// UIDNEXT.
    UidNext(u32),
    /// UIDVALIDITY (never zero).
    UidValidity(u32),
    /// UNSEEN.
    Unseen(u32),
    /// PERMANENTFLAGS.
    PermanentFlags(Vec<String>),
    /// CAPABILITY.
    Capability(Vec<String>),
    /// APPENDUID (RFC 4315).
    AppendUid {
        /// The target's UIDVALIDITY.
        validity: u32,
        /// The new UIDs.
        uids: Vec<u32>,
    },
    /// COPYUID (RFC 4315), also sent by MOVE.
    CopyUid {
        /// The target's UIDVALIDITY.
        validity: u32,
        /// Source UIDs, in order.
        from: Vec<u32>,
        /// Target UIDs, pairwise with `from`.
        to: Vec<u32>,
    },
    /// UIDNOTSTICKY.
    UidNotSticky,
    /// HIGHESTMODSEQ (RFC 7162).
    HighestModSeq(u64),
    /// NOMODSEQ: the mailbox has no mod-sequences.
    NoModSeq,
    /// MODIFIED: these UIDs failed UNCHANGEDSINCE.
    Modified(Vec<u32>),
    /// CLOSED: the previous mailbox was closed (QRESYNC).
    Closed,
    /// MAILBOXID (RFC 8474).
    MailboxId(String),
    /// RFC 5530 UNAVAILABLE.
    Unavailable,
    /// RFC 5530 AUTHENTICATIONFAILED.
    AuthenticationFailed,
    /// RFC 5530 AUTHORIZATIONFAILED.
    AuthorizationFailed,
    /// RFC 5530 EXPIRED.
    Expired,
    /// RFC 5530 PRIVACYREQUIRED.
    PrivacyRequired,
    /// RFC 5530 CONTACTADMIN.
    ContactAdmin,
    /// RFC 5530 NOPERM.
    NoPerm,
    /// RFC 5530 INUSE.
    InUse,
    /// RFC 5530 EXPUNGEISSUED.
    ExpungeIssued,
    /// RFC 5530 CORRUPTION.
    Corruption,
    /// RFC 5530 SERVERBUG.
    ServerBug,
    /// RFC 5530 CLIENTBUG.
    ClientBug,
    /// RFC 5530 CANNOT.
    Cannot,
    /// RFC 5530 LIMIT.
    Limit,
    /// RFC 5530 OVERQUOTA.
    OverQuota,
    /// RFC 5530 ALREADYEXISTS.
    AlreadyExists,
    /// RFC 5530 NONEXISTENT.
    NonExistent,
    /// Any other code, upper-cased, with its raw arguments.
    Other(String, Option<String>),
}

impl ResponseCode {
    /// The code's name as on the wire.
    pub fn name(&self) -> &str {
        use ResponseCode::*;
        match self {
            Alert => "ALERT",
            Parse => "PARSE",
            ReadOnly => "READ-ONLY",
            ReadWrite => "READ-WRITE",
            TryCreate => "TRYCREATE",
            UidNext(_) => "UIDNEXT",
            UidValidity(_) => "UIDVALIDITY",
            Unseen(_) => "UNSEEN",
            PermanentFlags(_) => "PERMANENTFLAGS",
            Capability(_) => "CAPABILITY",
            AppendUid { .. } => "APPENDUID",
            CopyUid { .. } => "COPYUID",
            UidNotSticky => "UIDNOTSTICKY",
            HighestModSeq(_) => "HIGHESTMODSEQ",
            NoModSeq => "NOMODSEQ",
            Modified(_) => "MODIFIED",
            Closed => "CLOSED",
            MailboxId(_) => "MAILBOXID",
            Unavailable => "UNAVAILABLE",
            AuthenticationFailed => "AUTHENTICATIONFAILED",
            AuthorizationFailed => "AUTHORIZATIONFAILED",
            Expired => "EXPIRED",
            PrivacyRequired => "PRIVACYREQUIRED",
            ContactAdmin => "CONTACTADMIN",
            NoPerm => "NOPERM",
            InUse => "INUSE",
            ExpungeIssued => "EXPUNGEISSUED",
            Corruption => "CORRUPTION",
            ServerBug => "SERVERBUG",
            ClientBug => "CLIENTBUG",
            Cannot => "CANNOT",
            Limit => "LIMIT",
            OverQuota => "OVERQUOTA",
            AlreadyExists => "ALREADYEXISTS",
            NonExistent => "NONEXISTENT",
            Other(name, _) => name,
        }
    }

    /// Parses the inside of `[...]` (name and arguments). Malformed
    /// arguments of a known code give [`ResponseCode::Other`].
    pub fn parse(inner: &str) -> ResponseCode {
        let (name, args) = match inner.split_once(' ') {
            Some((n, a)) => (n.to_ascii_uppercase(), Some(a.trim())),
            None => (inner.to_ascii_uppercase(), None),
        };
        Self::parse_named(&name, args)
            .unwrap_or_else(|| ResponseCode::Other(name, args.map(str::to_string)))
    }

    fn parse_named(name: &str, args: Option<&str>) -> Option<ResponseCode> {
        use ResponseCode::*;
        let number = || args?.parse::<u32>().ok();
        Some(match (name, args) {
            ("ALERT", _) => Alert,
            ("PARSE", _) => Parse,
            ("READ-ONLY", _) => ReadOnly,
            ("READ-WRITE", _) => ReadWrite,
            ("TRYCREATE", _) => TryCreate,
            ("UIDNEXT", _) => UidNext(number()?),
            ("UIDVALIDITY", _) => UidValidity(number().filter(|&v| v != 0)?),
            ("UNSEEN", _) => Unseen(number()?),
            ("UIDNOTSTICKY", _) => UidNotSticky,
            ("HIGHESTMODSEQ", Some(a)) => HighestModSeq(a.parse().ok()?),
            ("NOMODSEQ", _) => NoModSeq,
            ("MODIFIED", Some(a)) => Modified(parse_uid_set(a)?),
            ("CLOSED", _) => Closed,
            ("MAILBOXID", Some(a)) => {
                MailboxId(a.trim_matches(|c| c == '(' || c == ')').to_string())
            }
            ("APPENDUID", Some(a)) => {
                let (validity, uids) = a.split_once(' ')?;
                AppendUid {
                    validity: validity.parse().ok().filter(|&v| v != 0)?,
                    uids: parse_uid_set(uids)?,
                }
            }
            ("COPYUID", Some(a)) => {
                let mut parts = a.split(' ');
                let validity = parts.next()?.parse().ok().filter(|&v| v != 0)?;
                let from = parse_uid_set(parts.next()?)?;
                let to = parse_uid_set(parts.next()?)?;
                if from.len() != to.len() {
                    return None;
                }
                CopyUid { validity, from, to }
            }
            ("PERMANENTFLAGS", Some(a)) => PermanentFlags(words_in_parens(a)),
            ("CAPABILITY", Some(a)) => {
                Capability(a.split_whitespace().map(str::to_string).collect())
            }
            ("UNAVAILABLE", _) => Unavailable,
            ("AUTHENTICATIONFAILED", _) => AuthenticationFailed,
            ("AUTHORIZATIONFAILED", _) => AuthorizationFailed,
            ("EXPIRED", _) => Expired,
            ("PRIVACYREQUIRED", _) => PrivacyRequired,
            ("CONTACTADMIN", _) => ContactAdmin,
            ("NOPERM", _) => NoPerm,
            ("INUSE", _) => InUse,
            ("EXPUNGEISSUED", _) => ExpungeIssued,
            ("CORRUPTION", _) => Corruption,
            ("SERVERBUG", _) => ServerBug,
            ("CLIENTBUG", _) => ClientBug,
            ("CANNOT", _) => Cannot,
            ("LIMIT", _) => Limit,
            ("OVERQUOTA", _) => OverQuota,
            ("ALREADYEXISTS", _) => AlreadyExists,
            ("NONEXISTENT", _) => NonExistent,
            _ => return None,
        })
    }
}

fn words_in_parens(text: &str) -> Vec<String> {
    text.trim_matches(|c| c == '(' || c == ')')
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The largest number of UIDs a set may expand to (a hostile `1:4294967295`
/// must not allocate gigabytes).
pub const MAX_SET_EXPANSION: u64 = 10_000_000;

/// Parses a UID set (`1:3,7`), expanding ranges; zero, `*` and sets larger
/// than [`MAX_SET_EXPANSION`] are refused.
pub fn parse_uid_set(text: &str) -> Option<Vec<u32>> {
    let ranges = parse_uid_ranges(text)?;
    let total: u64 = ranges
        .iter()
        .map(|r| u64::from(r.end() - r.start()) + 1)
        .sum();
    if total > MAX_SET_EXPANSION {
        return None;
    }
    Some(ranges.into_iter().flatten().collect())
}

/// Parses a UID set into ranges without expanding it.
pub fn parse_uid_ranges(text: &str) -> Option<Vec<RangeInclusive<u32>>> {
    text.split(',')
        .map(|part| {
            let (a, b) = part.split_once(':').unwrap_or((part, part));
            let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
            (a != 0 && b != 0).then(|| a.min(b)..=a.max(b))
        })
        .collect()
}

/// The tagged completion of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// OK, NO or BAD.
    pub status: Status,
    /// The response code, if any.
    pub code: Option<ResponseCode>,
    /// The human-readable text.
    pub text: String,
}

/// One server response.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The completion of a command.
    Tagged {
        /// The command's tag.
        tag: String,
        /// Its status, code and text.
        completion: Completion,
    },
    /// A continuation request (`+ ...`).
    Continue {
        /// Its text (for SASL, the base64 challenge).
        text: String,
    },
    /// Data or a status without a tag.
    Untagged(Untagged),
}

/// An untagged response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Untagged {
    /// `* OK|NO|BAD|BYE|PREAUTH [code] text`.
    Status {
        /// The status.
        status: Status,
        /// The response code, if any.
        code: Option<ResponseCode>,
        /// The text.
        text: String,
    },
    /// `* CAPABILITY ...`.
    Capability(Vec<String>),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n RECENT`.
    Recent(u32),
    /// `* n EXPUNGE` (a sequence number).
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids`.
    Vanished {
        /// Whether it answers a QRESYNC SELECT or FETCH (EARLIER).
        earlier: bool,
        /// The UIDs that are gone.
        uids: Vec<RangeInclusive<u32>>,
    },
    /// `* n FETCH (...)`.
    Fetch(Fetch),
    /// `* FLAGS (...)`.
    Flags(Vec<String>),
    /// `* LIST (attributes) delimiter name`.
    List(ListEntry),
    /// `* STATUS mailbox (...)`.
    MailboxStatus(MailboxStatus),
    /// `* SEARCH uids...`.
    Search(Vec<u32>),
    /// `* ENABLED ...`.
    Enabled(Vec<String>),
    /// `* NAMESPACE ...`: the personal namespaces as (prefix, delimiter).
    Namespace(Vec<(String, Option<char>)>),
    /// A response ferry does not use, kept raw.
    Other(String),
}

/// A `LIST` (or `LSUB`) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Attributes such as `\Noselect`, `\HasChildren`, `\Sent`.
    pub attributes: Vec<String>,
    /// The hierarchy delimiter, if the server has one.
    pub delimiter: Option<char>,
    /// The mailbox name, decoded from modified UTF-7 when valid; else the
    /// wire name (see `wire_name`).
    pub name: String,
    /// The name as on the wire.
    pub wire_name: String,
}

impl ListEntry {
    /// Whether the mailbox cannot be selected.
    pub fn is_noselect(&self) -> bool {
        self.attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        })
    }

    /// The SPECIAL-USE attribute (`\Sent`, `\Trash`, ...), if any.
    pub fn special_use(&self) -> Option<&str> {
        const USES: [&str; 7] = [
            "\\All",
            "\\Archive",
            "\\Drafts",
            "\\Flagged",
            "\\Junk",
            "\\Sent",
            "\\Trash",
        ];
        self.attributes
            .iter()
            .map(String::as_str)
            .find(|a| USES.iter().any(|u| u.eq_ignore_ascii_case(a)))
    }
}

/// A `STATUS` response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxStatus {
    /// The mailbox (wire name).
    pub mailbox: String,
    /// MESSAGES.
    pub messages: Option<u32>,
    /// UIDNEXT.
    pub uid_next: Option<u32>,
    /// UIDVALIDITY (never zero).
    pub uid_validity: Option<u32>,
    /// UNSEEN.
    pub unseen: Option<u32>,
    /// HIGHESTMODSEQ.
    pub highest_mod_seq: Option<u64>,
}

/// A `FETCH` response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetch {
    /// The message sequence number.
    pub seq: u32,
    /// UID, if sent (never zero).
    pub uid: Option<u32>,
    /// FLAGS, if sent (`\Recent` left out).
    pub flags: Option<Vec<String>>,
    /// RFC822.SIZE.
    pub size: Option<u32>,
    /// INTERNALDATE as sent (`"17-Jul-1996 02:44:25 -0700"`).
    pub internal_date: Option<String>,
    /// MODSEQ.
    pub mod_seq: Option<u64>,
    /// BODY[] or RFC822 bytes held in memory (small literals).
    pub body: Option<Vec<u8>>,
    /// Whether the body literal was diverted to a sink.
    pub body_diverted: bool,
    /// BODY[HEADER.FIELDS (...)] bytes.
    pub header_fields: Option<Vec<u8>>,
    /// EMAILID (RFC 8474): the server's id of the message, kept across
    /// folders.
    pub email_id: Option<String>,
}

/// Converts imap-proto's response, or `None` when a field breaks a rule
/// (UID 0, UIDVALIDITY 0) that the grammar allows.
pub(crate) fn convert(response: ip::Response<'_>) -> Result<Response, String> {
    Ok(match response {
        ip::Response::Done {
            tag,
            status,
            code,
            information,
        } => {
            let (code, text) = code_and_text(code, information)?;
            Response::Tagged {
                tag: tag.0,
                completion: Completion {
                    status: status_of(status),
                    code,
                    text,
                },
            }
        }
        ip::Response::Continue { information, code } => Response::Continue {
            text: match (code, information) {
                (None, info) => info.map(|i| i.to_string()).unwrap_or_default(),
                (Some(_), info) => info.map(|i| i.to_string()).unwrap_or_default(),
            },
        },
        ip::Response::Data {
            status,
            code,
            information,
        } => {
            let (code, text) = code_and_text(code, information)?;
            Response::Untagged(Untagged::Status {
                status: status_of(status),
                code,
                text,
            })
        }
        ip::Response::Capabilities(caps) => Response::Untagged(Untagged::Capability(
            caps.iter().map(capability_name).collect(),
        )),
        ip::Response::Expunge(seq) => Response::Untagged(Untagged::Expunge(seq)),
        ip::Response::Vanished { earlier, uids } => {
            if uids.iter().any(|r| *r.start() == 0) {
                return Err("VANISHED names UID 0".into());
            }
            Response::Untagged(Untagged::Vanished { earlier, uids })
        }
        ip::Response::Fetch(seq, attrs) => {
            Response::Untagged(Untagged::Fetch(convert_fetch(seq, attrs)?))
        }
        ip::Response::MailboxData(datum) => Response::Untagged(convert_mailbox_data(datum)?),
        other => Response::Untagged(Untagged::Other(format!("{other:?}"))),
    })
}

fn status_of(status: ip::Status) -> Status {
    match status {
        ip::Status::Ok => Status::Ok,
        ip::Status::No => Status::No,
        ip::Status::Bad => Status::Bad,
        ip::Status::PreAuth => Status::PreAuth,
        ip::Status::Bye => Status::Bye,
    }
}

fn capability_name(cap: &ip::Capability<'_>) -> String {
    match cap {
        ip::Capability::Imap4rev1 => "IMAP4rev1".to_string(),
        ip::Capability::Auth(mech) => format!("AUTH={mech}"),
        ip::Capability::Atom(atom) => atom.to_string(),
    }
}

/// imap-proto types some codes; the rest stay in the text as `[CODE ...]`,
/// which is parsed here.
fn code_and_text(
    code: Option<ip::ResponseCode<'_>>,
    information: Option<std::borrow::Cow<'_, str>>,
) -> Result<(Option<ResponseCode>, String), String> {
    let text = information.map(|i| i.into_owned()).unwrap_or_default();
    if let Some(code) = code {
        return Ok((Some(convert_code(code)?), text));
    }
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let code = ResponseCode::parse(&rest[..end]);
            return Ok((Some(code), rest[end + 1..].trim_start().to_string()));
        }
    }
    Ok((None, text))
}

fn set_members(members: &[ip::UidSetMember]) -> Result<Vec<u32>, String> {
    let mut uids = Vec::new();
    for member in members {
        let range = match member {
            ip::UidSetMember::Uid(u) => *u..=*u,
            ip::UidSetMember::UidRange(r) => r.clone(),
        };
        if *range.start() == 0 {
            return Err("a UID set names UID 0".into());
        }
        if uids.len() as u64 + u64::from(range.end() - range.start()) > MAX_SET_EXPANSION {
            return Err("a UID set is absurdly large".into());
        }
        uids.extend(range);
    }
    Ok(uids)
}

fn convert_code(code: ip::ResponseCode<'_>) -> Result<ResponseCode, String> {
    use ResponseCode as C;
    Ok(match code {
        ip::ResponseCode::Alert => C::Alert,
        ip::ResponseCode::Parse => C::Parse,
        ip::ResponseCode::ReadOnly => C::ReadOnly,
        ip::ResponseCode::ReadWrite => C::ReadWrite,
        ip::ResponseCode::TryCreate => C::TryCreate,
        ip::ResponseCode::UidNext(n) => C::UidNext(n),
        ip::ResponseCode::UidValidity(0) => return Err("UIDVALIDITY 0".into()),
        ip::ResponseCode::UidValidity(v) => C::UidValidity(v),
        ip::ResponseCode::Unseen(n) => C::Unseen(n),
        ip::ResponseCode::PermanentFlags(flags) => {
            C::PermanentFlags(flags.iter().map(|f| f.to_string()).collect())
        }
        ip::ResponseCode::Capabilities(caps) => {
            C::Capability(caps.iter().map(capability_name).collect())
        }
        ip::ResponseCode::HighestModSeq(m) => C::HighestModSeq(m),
        ip::ResponseCode::AppendUid(0, _) | ip::ResponseCode::CopyUid(0, _, _) => {
            return Err("UIDVALIDITY 0 in APPENDUID/COPYUID".into());
        }
        ip::ResponseCode::AppendUid(validity, uids) => C::AppendUid {
            validity,
            uids: set_members(&uids)?,
        },
        ip::ResponseCode::CopyUid(validity, from, to) => {
            let (from, to) = (set_members(&from)?, set_members(&to)?);
            if from.len() != to.len() {
                return Err("COPYUID sets differ in size".into());
            }
            C::CopyUid { validity, from, to }
        }
        ip::ResponseCode::UidNotSticky => C::UidNotSticky,
        other => C::Other(format!("{other:?}"), None),
    })
}

fn convert_fetch(seq: u32, attrs: Vec<ip::AttributeValue<'_>>) -> Result<Fetch, String> {
    let mut fetch = Fetch {
        seq,
        ..Fetch::default()
    };
    for attr in attrs {
        match attr {
            ip::AttributeValue::Uid(0) => return Err(format!("FETCH {seq} carries UID 0")),
            ip::AttributeValue::Uid(uid) => fetch.uid = Some(uid),
            ip::AttributeValue::Flags(flags) => {
                // \Recent is session state, never a flag to propagate.
                let flags = flags.iter().filter(|f| !f.eq_ignore_ascii_case("\\Recent"));
                fetch.flags = Some(flags.map(|f| f.to_string()).collect());
            }
            ip::AttributeValue::Rfc822Size(size) => fetch.size = Some(size),
            ip::AttributeValue::InternalDate(date) => fetch.internal_date = Some(date.to_string()),
            ip::AttributeValue::ModSeq(m) => fetch.mod_seq = Some(m),
            ip::AttributeValue::Rfc822(data) => fetch.body = data.map(|d| d.into_owned()),
            ip::AttributeValue::BodySection { section, data, .. } => match section {
                None => fetch.body = data.map(|d| d.into_owned()),
                Some(_) => fetch.header_fields = data.map(|d| d.into_owned()),
            },
            _ => {}
        }
    }
    Ok(fetch)
}

fn convert_mailbox_data(datum: ip::MailboxDatum<'_>) -> Result<Untagged, String> {
    Ok(match datum {
        ip::MailboxDatum::Exists(n) => Untagged::Exists(n),
        ip::MailboxDatum::Recent(n) => Untagged::Recent(n),
        ip::MailboxDatum::Flags(flags) => {
            Untagged::Flags(flags.iter().map(|f| f.to_string()).collect())
        }
        ip::MailboxDatum::Search(uids) => {
            if uids.contains(&0) {
                return Err("SEARCH result contains 0".into());
            }
            Untagged::Search(uids)
        }
        ip::MailboxDatum::List {
            name_attributes,
            delimiter,
            name,
        } => Untagged::List(list_entry(&name_attributes, delimiter.as_deref(), &name)?),
        ip::MailboxDatum::Status { mailbox, status } => {
            Untagged::MailboxStatus(mailbox_status(&mailbox, &status)?)
        }
        other => Untagged::Other(format!("{other:?}")),
    })
}

fn list_entry(
    attributes: &[ip::NameAttribute<'_>],
    delimiter: Option<&str>,
    name: &str,
) -> Result<ListEntry, String> {
    let delimiter = match delimiter {
        None => None,
        Some(d) => {
            let mut chars = d.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => return Err(format!("LIST delimiter {d:?} is not one character")),
            }
        }
    };
    let attributes = attributes.iter().map(name_attribute).collect();
    Ok(ListEntry {
        attributes,
        delimiter,
        name: crate::mutf7::decode(name).unwrap_or_else(|_| name.to_string()),
        wire_name: name.to_string(),
    })
}

fn name_attribute(attribute: &ip::NameAttribute<'_>) -> String {
    use ip::NameAttribute as A;
    match attribute {
        A::NoInferiors => "\\Noinferiors".into(),
        A::NoSelect => "\\Noselect".into(),
        A::Marked => "\\Marked".into(),
        A::Unmarked => "\\Unmarked".into(),
        A::All => "\\All".into(),
        A::Archive => "\\Archive".into(),
        A::Drafts => "\\Drafts".into(),
        A::Flagged => "\\Flagged".into(),
        A::Junk => "\\Junk".into(),
        A::Sent => "\\Sent".into(),
        A::Trash => "\\Trash".into(),
        A::Extension(other) => other.to_string(),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

fn mailbox_status(mailbox: &str, items: &[ip::StatusAttribute]) -> Result<MailboxStatus, String> {
    let mut status = MailboxStatus {
        mailbox: mailbox.to_string(),
        ..MailboxStatus::default()
    };
    for item in items {
        match *item {
            ip::StatusAttribute::Messages(n) => status.messages = Some(n),
            ip::StatusAttribute::UidNext(n) => status.uid_next = Some(n),
            ip::StatusAttribute::UidValidity(0) => {
                return Err(format!("STATUS {mailbox} has UIDVALIDITY 0"));
            }
            ip::StatusAttribute::UidValidity(v) => status.uid_validity = Some(v),
            ip::StatusAttribute::Unseen(n) => status.unseen = Some(n),
            ip::StatusAttribute::HighestModSeq(m) => status.highest_mod_seq = Some(m),
            _ => {}
        }
    }
    Ok(status)
}

/// Parses what imap-proto does not know (NAMESPACE, ENABLED, and servers'
/// variants it rejects), from the raw response without its `* `.
pub(crate) fn parse_fallback(raw: &[u8]) -> Untagged {
    let text = String::from_utf8_lossy(raw);
    let trimmed = text.trim_end_matches(['\r', '\n']);
    let (word, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    match word.to_ascii_uppercase().as_str() {
        "ENABLED" => Untagged::Enabled(rest.split_whitespace().map(str::to_string).collect()),
        "NAMESPACE" => match sexp::parse(rest.as_bytes()) {
            Ok(tokens) => Untagged::Namespace(personal_namespaces(&tokens)),
            Err(_) => Untagged::Other(trimmed.to_string()),
        },
        _ => Untagged::Other(trimmed.to_string()),
    }
}

fn personal_namespaces(tokens: &[Token]) -> Vec<(String, Option<char>)> {
    let Some(Token::List(personal)) = tokens.first() else {
        return Vec::new();
    };
    personal
        .iter()
        .filter_map(|entry| match entry {
            Token::List(parts) => {
                let prefix = parts.first()?.as_string()?;
                let delimiter = parts
                    .get(1)
                    .and_then(Token::as_string)
                    .and_then(|d| d.chars().next());
                Some((prefix, delimiter))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_imap_proto_does_not_type() {
        assert_eq!(
            ResponseCode::parse("MODIFIED 7,9:11"),
            ResponseCode::Modified(vec![7, 9, 10, 11])
        );
        assert_eq!(ResponseCode::parse("NOMODSEQ"), ResponseCode::NoModSeq);
        assert_eq!(ResponseCode::parse("closed"), ResponseCode::Closed);
        assert_eq!(ResponseCode::parse("OVERQUOTA"), ResponseCode::OverQuota);
        assert_eq!(
            ResponseCode::parse("MAILBOXID (F2212ea87)"),
            ResponseCode::MailboxId("F2212ea87".into())
        );
        assert_eq!(
            ResponseCode::parse("COPYUID 9 1:2 20:21"),
            ResponseCode::CopyUid {
                validity: 9,
                from: vec![1, 2],
                to: vec![20, 21]
            }
        );
        assert!(matches!(
            ResponseCode::parse("UIDVALIDITY 0"),
            ResponseCode::Other(..)
        ));
        assert!(matches!(
            ResponseCode::parse("MODIFIED 0"),
            ResponseCode::Other(..)
        ));
        assert!(
            matches!(ResponseCode::parse("X-FOO bar"), ResponseCode::Other(n, Some(a)) if n == "X-FOO" && a == "bar")
        );
    }

    #[test]
    fn huge_sets_are_refused() {
        assert_eq!(parse_uid_set("1:4294967295"), None);
        assert_eq!(parse_uid_set("3:1"), Some(vec![1, 2, 3]));
        assert_eq!(parse_uid_set("*"), None);
    }

    #[test]
    fn namespace_and_enabled() {
        assert_eq!(
            parse_fallback(b"NAMESPACE ((\"INBOX.\" \".\")) NIL NIL"),
            Untagged::Namespace(vec![("INBOX.".into(), Some('.'))])
        );
        assert_eq!(
            parse_fallback(b"NAMESPACE ((\"\" NIL)) NIL NIL"),
            Untagged::Namespace(vec![("".into(), None)])
        );
        assert_eq!(
            parse_fallback(b"ENABLED CONDSTORE QRESYNC"),
            Untagged::Enabled(vec!["CONDSTORE".into(), "QRESYNC".into()])
        );
    }
}
