//! Deterministic, realistic mail corpora.
//!
//! [`generate`] turns a [`CorpusSpec`] into a lazy stream of [`Message`]s. The
//! same spec gives byte-identical messages on any machine: every message has
//! its own ChaCha8 stream (key from the seed, stream number = index), and the
//! generator uses integer and IEEE-exact float arithmetic only (no libm, no
//! clock, no thread RNG). A failing test or a benchmark can therefore be
//! reproduced from its seed, and any message can be built alone with
//! [`CorpusSpec::message`]. [`write_maildir`] writes a corpus straight into a
//! server-side Maildir before the server starts.
//!
//! [`Sizes::Realistic`] follows `bench/gen_corpus.py`:
//!
//! - folders INBOX 60 % / Archive 30 % / Sent 10 % (the default spec);
//! - 90.5 % text mails (lognormal, median about 7 KB, clipped to 1.5-40 KB),
//!   40 % of them multipart/alternative (plain + HTML); non-ASCII bodies are
//!   8bit, a quarter of them quoted-printable;
//! - 9 % multipart/mixed with a base64 attachment (100 KB - 1 MB,
//!   log-uniform), 0.5 % with a 1-2 MB one: about 50 KB on average. 70 % of
//!   attachments are random bytes (incompressible), 30 % CSV or log text;
//! - about 30 % of subjects and 20 % of display names are non-ASCII, written as
//!   RFC 2047 encoded words (UTF-8, Q or B encoding);
//! - 1-4 `Received:` headers, a DKIM signature on 60 %, `Cc:` on 30 %,
//!   replies with `In-Reply-To:`/`References:`; header lines are folded to at
//!   most 78 characters, body lines stay under 998;
//! - flags: INBOX 85 % `\Seen`, 4 % `\Flagged`, 12 % of the seen ones
//!   `\Answered`; Archive and Sent all seen (Archive 15 % answered, 2 %
//!   flagged). Unflagged unseen messages go to `new/` half of the time.
//!
//! Internal dates spread over 2021-2023, increasing with the index; the `Date:`
//! header is the same instant, written in one of a few time zones.
//! [`Message::body`] has LF line endings (how Maildir stores mail);
//! [`Message::crlf`] gives the bytes for an IMAP APPEND.
//!
//! # Example
//!
//! ```
//! use ferry_testkit::corpus::{self, CorpusSpec, MaildirLayout, Sizes};
//!
//! let spec = CorpusSpec { seed: 7, count: 20, sizes: Sizes::Small, ..CorpusSpec::default() };
//! for msg in corpus::generate(&spec) {
//!     assert!(msg.body.starts_with(b"Received: "));
//!     let _append = (msg.imap_flags(), msg.internal_date, msg.crlf());
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let summary = corpus::write_maildir(&spec, dir.path(), MaildirLayout::Fs)?;
//! assert_eq!(summary.count, 20);
//! assert!(dir.path().join("Archive/cur").is_dir());
//! # Ok::<(), std::io::Error>(())
//! ```

use ferry_core::date::civil_from_days;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{self, GeneralPurpose, STANDARD};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How large the generated messages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sizes {
    /// The mix of real mailboxes (as `bench/gen_corpus.py`): median a few
    /// KiB, about 9.5 % with base64 attachments of 100 KB - 2 MB, about
    /// 50 KB on average, never more than about 2.1 MB.
    Realistic,
    /// Text mails of 1-3 KiB each (no attachments, fewer headers), for corpora
    /// of 100,000 messages.
    Small,
    /// Plain-text mails of exactly this many bytes each (LF form), for tests.
    /// Sizes below the headers (about 600 bytes) give headers and an empty
    /// body, so such messages are larger than asked.
    Fixed(usize),
}

/// What to generate: seed, number of messages, size profile and folders.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorpusSpec {
    /// Seed of everything; the same spec always gives the same bytes.
    pub seed: u64,
    /// Number of messages.
    pub count: usize,
    /// Size profile.
    pub sizes: Sizes,
    /// Folders and their weights (relative, usually percent). Names use `/`
    /// as the hierarchy separator, whatever the server's separator, and do
    /// not include a namespace prefix (with Dovecot's `prefix = INBOX.`,
    /// folder `Archive` is seen as `INBOX.Archive`); `INBOX` (any case) is
    /// the inbox. A folder whose last component is `Sent` gets sent mail
    /// (from the user, all seen), `Archive` gets archived mail (all seen);
    /// any other folder is filled like INBOX. The total weight must be
    /// positive; folders of weight 0 stay empty.
    pub folders: Vec<(String, u32)>,
}

impl Default for CorpusSpec {
    /// Seed 1, 100 messages, [`Sizes::Realistic`], INBOX 60 / Archive 30 /
    /// Sent 10.
    fn default() -> Self {
        CorpusSpec {
            seed: 1,
            count: 100,
            sizes: Sizes::Realistic,
            folders: vec![
                ("INBOX".to_owned(), 60),
                ("Archive".to_owned(), 30),
                ("Sent".to_owned(), 10),
            ],
        }
    }
}

impl CorpusSpec {
    /// The default spec with this seed and count.
    pub fn new(seed: u64, count: usize) -> Self {
        CorpusSpec {
            seed,
            count,
            ..CorpusSpec::default()
        }
    }

    /// Message number `index` (0-based) of this corpus, built alone: the same
    /// as the `index`-th item of [`generate`]. `index` may exceed `count`
    /// (dates then run past the spread).
    ///
    /// # Panics
    ///
    /// If the folders' total weight is zero.
    pub fn message(&self, index: usize) -> Message {
        build(self, corpus_tag(self), index)
    }
}

/// One generated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Position in the corpus, from 0.
    pub index: usize,
    /// Folder name, as given in [`CorpusSpec::folders`].
    pub folder: String,
    /// Maildir info letters, sorted (`""`, `"S"`, `"FS"`, `"RS"`, `"FRS"`).
    pub flags: String,
    /// Internal date (arrival), Unix seconds; the `Date:` header is the same
    /// instant.
    pub internal_date: i64,
    /// The `Message-ID:` header value, with its angle brackets. Unique per
    /// spec and index: it holds the index, the seed and a hash of the spec.
    pub message_id: String,
    /// The subject, decoded (UTF-8, with any `Re: ` prefix).
    pub subject: String,
    /// Whether a Maildir writer puts this message in `new/` (no info part)
    /// rather than `cur/`; only for messages without flags.
    pub in_new: bool,
    /// The whole message, headers and body, with LF line endings and no CR.
    pub body: Vec<u8>,
}

/// Line endings of message bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LineEnding {
    /// `\n`, as Maildir stores mail (and Dovecot with `mail_save_crlf = no`).
    #[default]
    Lf,
    /// `\r\n`, as IMAP transfers mail.
    Crlf,
}

impl Message {
    /// The message with CRLF line endings, as sent in an IMAP APPEND.
    pub fn crlf(&self) -> Vec<u8> {
        let lines = self.body.iter().filter(|&&b| b == b'\n').count();
        let mut out = Vec::with_capacity(self.body.len() + lines);
        for line in self.body.split_inclusive(|&b| b == b'\n') {
            match line.split_last() {
                Some((b'\n', text)) => {
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\r\n");
                }
                _ => out.extend_from_slice(line),
            }
        }
        out
    }

    /// Size of [`Message::crlf`] (the IMAP RFC822.SIZE), without building it.
    pub fn crlf_len(&self) -> usize {
        self.body.len() + self.body.iter().filter(|&&b| b == b'\n').count()
    }

    /// The message bytes with the given line endings.
    pub fn bytes(&self, line_ending: LineEnding) -> Cow<'_, [u8]> {
        match line_ending {
            LineEnding::Lf => Cow::Borrowed(&self.body),
            LineEnding::Crlf => Cow::Owned(self.crlf()),
        }
    }

    /// The flags as IMAP system flags, in the order of the info letters
    /// (`F` -> `\Flagged`, `R` -> `\Answered`, `S` -> `\Seen`; `D` and `T`
    /// would be `\Draft` and `\Deleted`).
    pub fn imap_flags(&self) -> Vec<&'static str> {
        self.flags
            .chars()
            .filter_map(|c| match c {
                'D' => Some("\\Draft"),
                'F' => Some("\\Flagged"),
                'R' => Some("\\Answered"),
                'S' => Some("\\Seen"),
                'T' => Some("\\Deleted"),
                _ => None,
            })
            .collect()
    }

    /// Whether the message has this Maildir info letter (e.g. `'S'`).
    pub fn has_flag(&self, letter: char) -> bool {
        self.flags.contains(letter)
    }

    /// The Maildir file name [`write_maildir`] gives this message:
    /// `<date>.M<index>P<seed>.ferrytest,S=<size>,W=<crlf size>` plus
    /// `:2,<flags>` unless [`Message::in_new`]. `S=` is the size of the file
    /// written with `line_ending`, `W=` the CRLF size.
    pub fn maildir_name(&self, seed: u64, line_ending: LineEnding) -> String {
        let wsize = self.crlf_len();
        let size = match line_ending {
            LineEnding::Lf => self.body.len(),
            LineEnding::Crlf => wsize,
        };
        let mut name = format!(
            "{}.M{:06}P{}.ferrytest,S={},W={}",
            self.internal_date, self.index, seed, size, wsize
        );
        if !self.in_new {
            name.push_str(":2,");
            name.push_str(&self.flags);
        }
        name
    }
}

/// The messages of a corpus, built one at a time (see [`generate`]).
#[derive(Debug, Clone)]
pub struct Messages {
    spec: CorpusSpec,
    tag: u32,
    next: usize,
}

impl Iterator for Messages {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if self.next >= self.spec.count {
            return None;
        }
        let msg = build(&self.spec, self.tag, self.next);
        self.next += 1;
        Some(msg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.spec.count.saturating_sub(self.next);
        (left, Some(left))
    }

    fn nth(&mut self, n: usize) -> Option<Message> {
        self.next = self.next.saturating_add(n).min(self.spec.count);
        self.next()
    }
}

impl ExactSizeIterator for Messages {}

/// The corpus described by `spec`, built lazily: only the current message is
/// in memory (at most about 2.1 MB with [`Sizes::Realistic`]).
///
/// # Panics
///
/// When iterated, if `spec.folders` has no positive weight.
pub fn generate(spec: &CorpusSpec) -> Messages {
    Messages {
        spec: spec.clone(),
        tag: corpus_tag(spec),
        next: 0,
    }
}

/// How folders map to directories under a Maildir root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MaildirLayout {
    /// Maildir++ (Dovecot's default, Courier): INBOX is the root
    /// (`root/cur`), folder `A/B` is `root/.A.B`, with a `maildirfolder`
    /// file. Names must not contain `.`.
    #[default]
    MaildirPlusPlus,
    /// Dovecot's `LAYOUT=fs` (`mail_location = maildir:~/Maildir:LAYOUT=fs`):
    /// INBOX is still the root (`root/cur`, checked with Dovecot 2.3), folder
    /// `A/B` is `root/A/B`. A top-level folder named `cur`, `new` or `tmp`
    /// is refused. This is not ferry's local `fs` layout, where INBOX is
    /// `root/INBOX`: for that, name the folder `INBOX` something else, or
    /// move `root/{cur,new,tmp}` yourself.
    Fs,
}

impl MaildirLayout {
    /// The Maildir directory (the one holding `cur/`, `new/`, `tmp/`) of
    /// `folder` under `root`, as Dovecot names it: non-ASCII names in
    /// modified UTF-7 (`Entwürfe` -> `Entw&APw-rfe`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a name this layout cannot hold: empty components,
    /// `.` or `..`, NUL, a `.` inside a name with Maildir++, a leading `.` or
    /// a top-level `cur`/`new`/`tmp` with `Fs`.
    pub fn folder_path(self, root: &Path, folder: &str) -> io::Result<PathBuf> {
        if folder.eq_ignore_ascii_case("INBOX") {
            return Ok(root.to_path_buf());
        }
        let invalid = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("corpus folder {folder:?}: {why}"),
            )
        };
        let parts: Vec<&str> = folder.split('/').collect();
        for part in &parts {
            if part.is_empty() || *part == "." || *part == ".." {
                return Err(invalid("empty, `.` or `..` component"));
            }
            if part.contains('\0') {
                return Err(invalid("NUL in name"));
            }
        }
        match self {
            MaildirLayout::MaildirPlusPlus => {
                if parts.iter().any(|p| p.contains('.')) {
                    return Err(invalid("`.` is the Maildir++ separator"));
                }
                let encoded: Vec<String> = parts.iter().map(|p| mutf7(p)).collect();
                Ok(root.join(format!(".{}", encoded.join("."))))
            }
            MaildirLayout::Fs => {
                if parts.iter().any(|p| p.starts_with('.')) {
                    return Err(invalid("leading `.` in a component"));
                }
                if matches!(parts[0], "cur" | "new" | "tmp") {
                    return Err(invalid("clashes with the INBOX's cur/new/tmp"));
                }
                let mut path = root.to_path_buf();
                for part in &parts {
                    path.push(mutf7(part));
                }
                Ok(path)
            }
        }
    }
}

impl From<crate::Layout> for MaildirLayout {
    /// The layout a [`Dovecot`](crate::Dovecot) started with this
    /// [`Layout`](crate::Layout) reads.
    fn from(layout: crate::Layout) -> Self {
        match layout {
            crate::Layout::MaildirPlusPlus => MaildirLayout::MaildirPlusPlus,
            crate::Layout::Fs => MaildirLayout::Fs,
        }
    }
}

/// Options of [`write_maildir_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MaildirOptions {
    /// Folder layout.
    pub layout: MaildirLayout,
    /// Line endings of the files; LF (the default) is what Maildir stores.
    pub line_ending: LineEnding,
}

/// Messages and bytes written to one folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderSummary {
    /// Number of messages.
    pub messages: usize,
    /// Total file size in bytes.
    pub bytes: u64,
}

/// One file [`write_maildir`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenMessage {
    /// Position in the corpus.
    pub index: usize,
    /// Folder name, as in the spec.
    pub folder: String,
    /// The `Message-ID:` header value, with angle brackets.
    pub message_id: String,
    /// Maildir info letters, sorted.
    pub flags: String,
    /// Internal date (the file's mtime), Unix seconds.
    pub internal_date: i64,
    /// File size in bytes.
    pub size: u64,
    /// Full path of the file.
    pub path: PathBuf,
}

/// What [`write_maildir`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorpusSummary {
    /// Number of messages written.
    pub count: usize,
    /// Total bytes written.
    pub bytes: u64,
    /// Per folder of the spec (also those that got no message).
    pub folders: BTreeMap<String, FolderSummary>,
    /// Every file, in corpus order.
    pub messages: Vec<WrittenMessage>,
}

impl CorpusSummary {
    /// Number of messages written to `folder` (0 for an unknown folder).
    pub fn count_in(&self, folder: &str) -> usize {
        self.folders.get(folder).map_or(0, |f| f.messages)
    }
}

/// Writes the corpus into the Maildir tree at `root` with LF line endings
/// (see [`write_maildir_with`]).
///
/// # Errors
///
/// As [`write_maildir_with`].
pub fn write_maildir(
    spec: &CorpusSpec,
    root: &Path,
    layout: MaildirLayout,
) -> io::Result<CorpusSummary> {
    write_maildir_with(
        spec,
        root,
        MaildirOptions {
            layout,
            line_ending: LineEnding::Lf,
        },
    )
}

/// Writes the corpus into the Maildir tree at `root`, meant for a server's
/// mail directory before the server starts (Dovecot indexes it on first
/// access).
///
/// Every folder of the spec gets `cur/`, `new/` and `tmp/` (missing
/// directories are created, existing mail is kept). Each message becomes one
/// file named by [`Message::maildir_name`], in `new/` when
/// [`Message::in_new`], else in `cur/`; its mtime (and atime) is the internal
/// date, which Dovecot reports as INTERNALDATE. Files are created with
/// `create_new`, so writing the same corpus twice fails instead of mixing.
///
/// # Errors
///
/// `InvalidInput` for a spec without positive folder weight, a folder name
/// the layout cannot hold (see [`MaildirLayout::folder_path`]) or two folders
/// on the same directory; `AlreadyExists` for a file already there; any I/O
/// error.
pub fn write_maildir_with(
    spec: &CorpusSpec,
    root: &Path,
    options: MaildirOptions,
) -> io::Result<CorpusSummary> {
    if total_weight(spec) == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "corpus spec has no folder with a positive weight",
        ));
    }
    // Check every name before creating anything.
    let mut dirs: BTreeMap<&str, PathBuf> = BTreeMap::new();
    for (name, _) in &spec.folders {
        let dir = options.layout.folder_path(root, name)?;
        if dirs.iter().any(|(other, d)| *d == dir && *other != name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("corpus folders share the directory {}", dir.display()),
            ));
        }
        dirs.insert(name, dir);
    }
    let mut summary = CorpusSummary::default();
    for (name, dir) in &dirs {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        if options.layout == MaildirLayout::MaildirPlusPlus && dir != root {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join("maildirfolder"))?;
        }
        summary
            .folders
            .insert((*name).to_owned(), FolderSummary::default());
    }

    for msg in generate(spec) {
        let dir = dirs.get(msg.folder.as_str()).ok_or_else(|| {
            io::Error::other(format!("generated unknown folder {:?}", msg.folder))
        })?;
        let path = dir
            .join(if msg.in_new { "new" } else { "cur" })
            .join(msg.maildir_name(spec.seed, options.line_ending));
        let bytes = msg.bytes(options.line_ending);
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(&bytes)?;
        let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(msg.internal_date).unwrap_or(0));
        file.set_times(FileTimes::new().set_accessed(time).set_modified(time))?;
        drop(file);

        let size = bytes.len() as u64;
        summary.count += 1;
        summary.bytes += size;
        let folder = summary.folders.entry(msg.folder.clone()).or_default();
        folder.messages += 1;
        folder.bytes += size;
        summary.messages.push(WrittenMessage {
            index: msg.index,
            folder: msg.folder,
            message_id: msg.message_id,
            flags: msg.flags,
            internal_date: msg.internal_date,
            size,
            path,
        });
    }
    Ok(summary)
}

// ---------------------------------------------------------------------------
// Randomness: ChaCha8, one stream per message, integer and IEEE-exact only.

struct Rng(ChaCha8Rng);

impl Rng {
    fn for_message(seed: u64, index: usize) -> Rng {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..24].copy_from_slice(b"ferry-corpus-v1\0");
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(index as u64);
        Rng(rng)
    }

    /// Uniform in `0..n` (n > 0; multiply-shift, bias below 2^-32 * n).
    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.0.next_u32()) * u64::from(n)) >> 32) as u32
    }

    fn below64(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(hi - lo + 1)
    }

    fn range_usize(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below64((hi - lo + 1) as u64) as usize
    }

    /// Uniform in `[0, 1)`, 53 bits.
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u32) as usize]
    }

    /// Approximately standard normal (Irwin-Hall: 12 uniforms minus 6).
    fn normal(&mut self) -> f64 {
        let mut sum = 0.0;
        for _ in 0..12 {
            sum += self.unit();
        }
        sum - 6.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
    }
}

/// `e^x` from +, -, *, / only, so it is the same on every machine (libm's
/// `exp` may differ in the last bit). For |x| < 700.
fn exp_exact(x: f64) -> f64 {
    let k = (x / std::f64::consts::LN_2).round();
    let r = x - k * std::f64::consts::LN_2;
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 1..=20 {
        term *= r / f64::from(n);
        sum += term;
    }
    sum * f64::from_bits(((1023 + k as i64) as u64) << 52)
}

/// `lo * (hi/lo)^u`, u uniform: `ln_ratio` is `ln(hi/lo)`.
fn log_uniform(rng: &mut Rng, lo: usize, ln_ratio: f64) -> usize {
    (lo as f64 * exp_exact(rng.unit() * ln_ratio)) as usize
}

/// FNV-1a of the spec: part of every Message-ID, so corpora that differ in
/// anything never share one.
fn corpus_tag(spec: &CorpusSpec) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&spec.seed.to_le_bytes());
    eat(&(spec.count as u64).to_le_bytes());
    match spec.sizes {
        Sizes::Realistic => eat(b"R"),
        Sizes::Small => eat(b"S"),
        Sizes::Fixed(n) => {
            eat(b"F");
            eat(&(n as u64).to_le_bytes());
        }
    }
    for (name, weight) in &spec.folders {
        eat(name.as_bytes());
        eat(&[0]);
        eat(&weight.to_le_bytes());
    }
    (h ^ (h >> 32)) as u32
}

fn total_weight(spec: &CorpusSpec) -> u64 {
    spec.folders.iter().map(|(_, w)| u64::from(*w)).sum()
}

// ---------------------------------------------------------------------------
// Vocabulary (as gen_corpus.py).

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "more",
    "will",
    "can",
    "said",
    "about",
    "what",
    "out",
    "up",
    "them",
    "into",
    "do",
    "only",
    "could",
    "time",
    "new",
    "some",
    "these",
    "two",
    "may",
    "first",
    "then",
    "other",
    "than",
    "its",
    "also",
    "after",
    "people",
    "any",
    "over",
    "like",
    "because",
    "made",
    "most",
    "meeting",
    "project",
    "report",
    "budget",
    "deadline",
    "review",
    "update",
    "server",
    "release",
    "quarter",
    "invoice",
    "schedule",
    "customer",
    "proposal",
    "draft",
    "agenda",
    "feedback",
    "deployment",
    "backup",
    "migration",
    "ticket",
    "attached",
    "please",
    "thanks",
    "regards",
    "tomorrow",
    "monday",
    "friday",
    "minutes",
    "notes",
    "question",
    "issue",
    "contract",
    "renewal",
    "vendor",
    "pricing",
    "estimate",
    "approval",
    "team",
    "office",
    "travel",
    "conference",
];

const UNI_SUBJ: &[&str] = &[
    "Grüße aus München",
    "Réunion de l'équipe — ordre du jour",
    "Überprüfung der Rechnung",
    "会議の議事録",
    "Отчёт за квартал",
    "Café ☕ on Friday?",
    "Año nuevo: planificación",
    "Zürich trip 🚆 itinerary",
    "Πρόταση συνεργασίας",
    "Smörgåsbord & fika",
    "Ελέγξτε το συνημμένο",
    "请查收附件",
    "Naïve question about the façade",
];

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
    "Oscar", "Peggy", "Trent", "Victor", "Walter",
];

const LAST: &[&str] = &[
    "Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Moore", "Clark",
];

/// Non-ASCII display names and the local part of their address.
const UNI_NAMES: &[(&str, &str)] = &[
    ("Jürgen Müller", "juergen"),
    ("Zoë Lefèvre", "zoe"),
    ("Søren Kierkegård", "soren"),
    ("José Núñez", "jose"),
    ("山田 太郎", "yamada"),
    ("Ирина Петрова", "irina"),
    ("Łukasz Żółw", "lukasz"),
    ("François Dupré", "francois"),
];

const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "lists.example.org",
];

const MAILERS: &[&str] = &[
    "Thunderbird 115.3",
    "Apple Mail (2.3731)",
    "Mutt/2.2.9",
    "Microsoft Outlook 16.0",
];

/// (type, subtype, extension)
const ATTACH_BIN: &[(&str, &str, &str)] = &[
    ("image", "jpeg", "jpg"),
    ("application", "pdf", "pdf"),
    ("application", "zip", "zip"),
    ("image", "png", "png"),
];
const ATTACH_TXT: &[(&str, &str, &str)] = &[("text", "csv", "csv"), ("text", "plain", "log")];
const UNI_FILES: &[&str] = &[
    "Rechnung März",
    "Présentation",
    "見積書",
    "Отчёт",
    "Facture été",
];

/// Time zones of `Date:` headers, in minutes east of UTC.
const ZONES: &[i32] = &[0, 0, 60, 60, 120, -300, -240, -480, 330, 540, 600];

const ME_NAME: &str = "Ferry Tester";
const ME_ADDR: &str = "tester@example.com";
const ID_DOMAIN: &str = "corpus.ferry.example";

/// 2021-01-01T00:00:00Z and three years: the spread of internal dates.
const START: i64 = 1_609_459_200;
const SPAN: u64 = 3 * 365 * 86_400;

// ---------------------------------------------------------------------------
// Building one message.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inbox,
    Archive,
    Sent,
}

impl Kind {
    fn of(folder: &str) -> Kind {
        let last = folder.rsplit('/').next().unwrap_or(folder);
        if last.eq_ignore_ascii_case("Sent") {
            Kind::Sent
        } else if last.eq_ignore_ascii_case("Archive") {
            Kind::Archive
        } else {
            Kind::Inbox
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cte {
    SevenBit,
    EightBit,
    QuotedPrintable,
}

fn message_id(index: usize, seed: u64, tag: u32) -> String {
    format!("<{index}.{seed}.{tag:08x}@{ID_DOMAIN}>")
}

fn pick_folder<'a>(rng: &mut Rng, spec: &'a CorpusSpec) -> &'a str {
    let total = total_weight(spec);
    assert!(
        total > 0,
        "CorpusSpec::folders needs at least one folder with a positive weight"
    );
    let mut x = rng.below64(total);
    for (name, weight) in &spec.folders {
        let w = u64::from(*weight);
        if x < w {
            return name;
        }
        x -= w;
    }
    // Unreachable: x < total.
    &spec.folders[spec.folders.len() - 1].0
}

fn flags_for(rng: &mut Rng, kind: Kind) -> String {
    let (f, r, s) = match kind {
        Kind::Inbox => {
            let s = rng.chance(0.85);
            let f = rng.chance(0.04);
            (f, s && rng.chance(0.12), s)
        }
        Kind::Archive => {
            let r = rng.chance(0.15);
            (rng.chance(0.02), r, true)
        }
        Kind::Sent => (false, false, true),
    };
    let mut out = String::new();
    for (set, letter) in [(f, 'F'), (r, 'R'), (s, 'S')] {
        if set {
            out.push(letter);
        }
    }
    out
}

fn build(spec: &CorpusSpec, tag: u32, index: usize) -> Message {
    let mut rng = Rng::for_message(spec.seed, index);

    // Metadata first, so the body generator can change without moving it.
    let folder = pick_folder(&mut rng, spec).to_owned();
    let kind = Kind::of(&folder);
    let count = spec.count.max(1) as u128;
    let offset = (u128::from(SPAN) * index as u128 + u128::from(rng.below64(SPAN))) / count;
    let internal_date = START + i64::try_from(offset).unwrap_or(i64::MAX - START);
    let flags = flags_for(&mut rng, kind);
    let in_new = flags.is_empty() && rng.chance(0.5);
    let zone = *rng.pick(ZONES);
    let msg_id = message_id(index, spec.seed, tag);

    let realistic = spec.sizes == Sizes::Realistic;
    let mut out = String::with_capacity(8 * 1024);

    // Trace headers: real mail carries 1-4 KB of them.
    let hops = match spec.sizes {
        Sizes::Realistic => rng.range(1, 4),
        Sizes::Small => rng.range(1, 2),
        Sizes::Fixed(_) => 1,
    };
    for hop in 0..hops {
        let value = format!(
            "from mx{hop}.{} (mx{hop}.{} [127.0.{hop}.{}]) by mail.example.com with ESMTPS id {:016x}; {}",
            rng.pick(DOMAINS),
            rng.pick(DOMAINS),
            rng.range(1, 254),
            rng.0.next_u64(),
            rfc5322_date(internal_date - i64::from(hop), 0),
        );
        push_field(&mut out, "Received", &value);
    }
    if realistic && rng.chance(0.6) {
        let mut bh = [0u8; 32];
        rng.fill(&mut bh);
        let mut sig = [0u8; 256];
        rng.fill(&mut sig);
        let sig = STANDARD.encode(sig);
        let chunks: Vec<&str> = sig
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let value = format!(
            "v=1; a=rsa-sha256; c=relaxed/relaxed; d={}; s=sel1; h=from:to:subject:date; bh={}; b={}",
            rng.pick(DOMAINS),
            STANDARD.encode(bh),
            chunks.join(" "),
        );
        push_field(&mut out, "DKIM-Signature", &value);
    }

    let me = (Cow::Borrowed(ME_NAME), ME_ADDR.to_owned());
    let (from, to) = if kind == Kind::Sent {
        (me, person(&mut rng))
    } else {
        (person(&mut rng), me)
    };
    let b = rng.chance(0.5);
    push_field(&mut out, "From", &mailbox(&from.0, &from.1, b));
    push_field(&mut out, "To", &mailbox(&to.0, &to.1, b));
    if !matches!(spec.sizes, Sizes::Fixed(_)) && rng.chance(0.3) {
        let n = if realistic { rng.range(1, 4) } else { 1 };
        let cc: Vec<String> = (0..n)
            .map(|_| {
                let (name, addr) = person(&mut rng);
                mailbox(&name, &addr, b)
            })
            .collect();
        push_field(&mut out, "Cc", &cc.join(", "));
    }

    let unicode_subject = rng.chance(0.3);
    let mut subject = if unicode_subject {
        format!("{} #{index}", rng.pick(UNI_SUBJ))
    } else {
        let n = rng.range(3, 9);
        let mut s = String::new();
        for k in 0..n {
            if k > 0 {
                s.push(' ');
            }
            let word = rng.pick(WORDS);
            push_word(&mut s, word, k == 0);
        }
        let _ = write!(s, " #{index}");
        s
    };
    let reply = index > 0 && rng.chance(0.3);
    let encoded = if subject.is_ascii() {
        subject.clone()
    } else {
        encoded_words(&subject, rng.chance(0.5))
    };
    if reply {
        subject.insert_str(0, "Re: ");
        let parent = index.saturating_sub(rng.range_usize(1, 50));
        let reference = message_id(parent, spec.seed, tag);
        push_field(&mut out, "In-Reply-To", &reference);
        push_field(&mut out, "References", &reference);
        push_field(&mut out, "Subject", &format!("Re: {encoded}"));
    } else {
        push_field(&mut out, "Subject", &encoded);
    }
    push_field(&mut out, "Date", &rfc5322_date(internal_date, zone));
    push_field(&mut out, "Message-ID", &msg_id);
    let mailer = rng.pick(MAILERS);
    push_field(&mut out, "X-Mailer", mailer);
    push_field(&mut out, "MIME-Version", "1.0");

    match spec.sizes {
        Sizes::Realistic => realistic_body(&mut rng, &mut out, spec.seed, index),
        Sizes::Small => small_body(&mut rng, &mut out, spec.seed, index),
        Sizes::Fixed(n) => {
            text_entity(&mut out, "plain", "", Cte::SevenBit);
            let body_len = n.saturating_sub(out.len());
            let mut text = text_body(&mut rng, body_len, false);
            cut_text(&mut text, body_len);
            out.push_str(&text);
        }
    }

    Message {
        index,
        folder,
        flags,
        internal_date,
        message_id: msg_id,
        subject,
        in_new,
        body: out.into_bytes(),
    }
}

fn realistic_body(rng: &mut Rng, out: &mut String, seed: u64, index: usize) {
    let r = rng.unit();
    if r < 0.905 {
        // Text, or text + HTML: lognormal, median ~7 KB, 1.5-40 KB.
        let size = exp_exact(8.85 + 0.6 * rng.normal()).clamp(1_500.0, 40_000.0) as usize;
        let unicode = rng.chance(0.3);
        let alt = rng.chance(0.4);
        let qp = unicode && rng.chance(0.25);
        let text_len = if alt {
            size * 2 / 5
        } else {
            size.saturating_sub(1_200)
        };
        let text = text_body(rng, text_len, unicode);
        let cte = cte_of(&text, qp);
        if alt {
            let boundary = boundary(seed, index, 0);
            alternative(out, &boundary, &text, cte, rng.chance(0.5));
        } else {
            text_entity(out, "plain", &text, cte);
        }
    } else {
        // multipart/mixed with a base64 attachment of 100 KB - 1 MB, or 1-2 MB.
        let target = if r < 0.995 {
            log_uniform(rng, 100_000, std::f64::consts::LN_10)
        } else {
            log_uniform(rng, 1_000_000, std::f64::consts::LN_2)
        };
        let raw = target * 74 / 100; // base64 grows by 4/3, plus newlines
        let text_len = rng.range_usize(300, 3_000);
        let text = text_body(rng, text_len, false);
        let nested = rng.chance(0.3);
        let mixed = boundary(seed, index, 0);
        let _ = write!(
            out,
            "Content-Type: multipart/mixed;\n boundary=\"{mixed}\"\n\n"
        );
        if rng.chance(0.5) {
            out.push_str("This is a multi-part message in MIME format.\n");
        }
        let _ = writeln!(out, "--{mixed}");
        if nested {
            alternative(out, &boundary(seed, index, 1), &text, Cte::SevenBit, false);
        } else {
            text_entity(out, "plain", &text, Cte::SevenBit);
        }
        let _ = write!(out, "\n--{mixed}\n");

        let binary = rng.chance(0.7);
        let (main, sub, ext) = *rng.pick(if binary { ATTACH_BIN } else { ATTACH_TXT });
        if rng.chance(0.1) {
            let name = format!("{}-{index}.{ext}", rng.pick(UNI_FILES));
            let _ = write!(
                out,
                "Content-Type: {main}/{sub}\nContent-Transfer-Encoding: base64\n\
                 Content-Disposition: attachment;\n filename*=utf-8''{}\n\n",
                percent_encode(&name)
            );
        } else {
            let name = format!("attachment-{index}.{ext}");
            let _ = write!(
                out,
                "Content-Type: {main}/{sub}; name=\"{name}\"\nContent-Transfer-Encoding: base64\n\
                 Content-Disposition: attachment; filename=\"{name}\"\n\n"
            );
        }
        out.reserve(raw / 3 * 4 + raw / 57 + 64);
        if binary {
            random_base64(rng, raw, out);
        } else {
            let data = text_attachment(rng, ext, raw);
            base64_lines(&data, out);
        }
        let _ = write!(out, "\n--{mixed}--\n");
    }
}

fn small_body(rng: &mut Rng, out: &mut String, seed: u64, index: usize) {
    let target = rng.range_usize(1_300, 2_700);
    let unicode = rng.chance(0.3);
    let alt = rng.chance(0.3);
    let qp = unicode && rng.chance(0.25);
    let room = target.saturating_sub(out.len());
    let text_len = if alt {
        room.saturating_sub(700) * 9 / 20
    } else {
        room.saturating_sub(100)
    }
    .max(120);
    let mut text = text_body(rng, text_len, unicode);
    cut_text(&mut text, text_len);
    let cte = cte_of(&text, qp);
    if alt {
        alternative(out, &boundary(seed, index, 0), &text, cte, false);
    } else {
        text_entity(out, "plain", &text, cte);
    }
}

fn cte_of(text: &str, qp: bool) -> Cte {
    if text.is_ascii() {
        Cte::SevenBit
    } else if qp {
        Cte::QuotedPrintable
    } else {
        Cte::EightBit
    }
}

fn boundary(seed: u64, index: usize, k: u32) -> String {
    format!("=_ferry_{seed}_{index}_{k}")
}

/// Content-Type and Content-Transfer-Encoding of a text entity, a blank line
/// and its body (already ending in a newline).
fn text_entity(out: &mut String, subtype: &str, text: &str, cte: Cte) {
    let cte_name = match cte {
        Cte::SevenBit => "7bit",
        Cte::EightBit => "8bit",
        Cte::QuotedPrintable => "quoted-printable",
    };
    let _ = write!(
        out,
        "Content-Type: text/{subtype}; charset=\"utf-8\"\nContent-Transfer-Encoding: {cte_name}\n\n"
    );
    if cte == Cte::QuotedPrintable {
        quoted_printable(text, out);
    } else {
        out.push_str(text);
    }
}

/// A multipart/alternative entity (headers and body) of `text` and its HTML.
fn alternative(out: &mut String, boundary: &str, text: &str, cte: Cte, preamble: bool) {
    let _ = write!(
        out,
        "Content-Type: multipart/alternative;\n boundary=\"{boundary}\"\n\n"
    );
    if preamble {
        out.push_str("This is a multi-part message in MIME format.\n");
    }
    let _ = writeln!(out, "--{boundary}");
    text_entity(out, "plain", text, cte);
    let _ = write!(out, "\n--{boundary}\n");
    text_entity(out, "html", &html_of(text), cte);
    let _ = write!(out, "\n--{boundary}--\n");
}

fn html_of(text: &str) -> String {
    let mut html = String::with_capacity(text.len() * 11 / 10 + 256);
    html.push_str(
        "<html><head><meta charset=\"utf-8\">\n<style>p{font-family:Arial,sans-serif;\
         font-size:14px;margin:0 0 1em}</style>\n</head><body>\n",
    );
    for para in text.split("\n\n") {
        let para = para.trim_end_matches('\n');
        if para.is_empty() {
            continue;
        }
        html.push_str("<p>");
        for ch in para.chars() {
            match ch {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                _ => html.push(ch),
            }
        }
        html.push_str("</p>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// Paragraphs of pseudo-English, hard-wrapped at 72 columns like a MUA,
/// optionally sprinkled with non-ASCII phrases: at least `size` bytes, ending
/// in a newline (empty when `size` is 0).
fn text_body(rng: &mut Rng, size: usize, unicode: bool) -> String {
    let mut out = String::with_capacity(size + 1_024);
    while out.len() < size {
        if !out.is_empty() {
            out.push('\n');
        }
        let mut col = 0;
        let sentences = rng.range(2, 6);
        for _ in 0..sentences {
            let n = rng.range(6, 18);
            for k in 0..n {
                let word = rng.pick(WORDS);
                let end = if k + 1 == n {
                    Some(*rng.pick(&['.', '.', '.', '?', '!']))
                } else {
                    None
                };
                wrap_word(&mut out, &mut col, word, k == 0, end);
            }
        }
        if unicode && rng.chance(0.3) {
            for word in rng.pick(UNI_SUBJ).split(' ') {
                wrap_word(&mut out, &mut col, word, false, None);
            }
        }
        out.push('\n');
    }
    out
}

fn wrap_word(out: &mut String, col: &mut usize, word: &str, capital: bool, end: Option<char>) {
    let len = word.len() + usize::from(end.is_some());
    if *col > 0 && *col + 1 + len > 72 {
        out.push('\n');
        *col = 0;
    }
    if *col > 0 {
        out.push(' ');
        *col += 1;
    }
    push_word(out, word, capital);
    if let Some(c) = end {
        out.push(c);
    }
    *col += len;
}

fn push_word(out: &mut String, word: &str, capital: bool) {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) if capital => {
            out.push(first.to_ascii_uppercase());
            out.push_str(chars.as_str());
        }
        _ => out.push_str(word),
    }
}

/// Shortens `text` to `len` bytes (fewer only to keep UTF-8 whole) ending in
/// a newline.
fn cut_text(text: &mut String, len: usize) {
    if len == 0 {
        text.clear();
        return;
    }
    if text.len() <= len {
        return;
    }
    let mut cut = len - 1;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('\n');
}

/// Quoted-printable (RFC 2045): lines of at most 76 characters.
fn quoted_printable(text: &str, out: &mut String) {
    for line in text.split_terminator('\n') {
        let bytes = line.as_bytes();
        let mut col = 0;
        for (k, &b) in bytes.iter().enumerate() {
            let last = k + 1 == bytes.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let width = if literal { 1 } else { 3 };
            // Keep room for the soft break "=" unless this is the last char.
            if col + width > if last { 76 } else { 75 } {
                out.push_str("=\n");
                col = 0;
            }
            if literal {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "={b:02X}");
            }
            col += width;
        }
        out.push('\n');
    }
}

/// `raw` random bytes, base64 in lines of 76, generated chunk by chunk.
fn random_base64(rng: &mut Rng, raw: usize, out: &mut String) {
    let mut buf = vec![0u8; 57 * 256];
    let mut left = raw;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill(&mut buf[..n]);
        base64_lines(&buf[..n], out);
        left -= n;
    }
}

fn base64_lines(data: &[u8], out: &mut String) {
    for line in data.chunks(57) {
        STANDARD.encode_string(line, out);
        out.push('\n');
    }
}

/// CSV rows or log lines, exactly `raw` bytes.
fn text_attachment(rng: &mut Rng, ext: &str, raw: usize) -> Vec<u8> {
    let mut s = String::with_capacity(raw + 256);
    let csv = ext == "csv";
    if csv {
        s.push_str("id,a,b,c,d,e,amount\n");
    }
    let mut seq = 0u32;
    while s.len() < raw {
        if csv {
            let _ = write!(s, "{}", rng.below(1_000_000));
            for _ in 0..5 {
                s.push(',');
                let word = rng.pick(WORDS);
                s.push_str(word);
            }
            let _ = writeln!(s, ",{}.{:02}", rng.below(1_000), rng.below(100));
        } else {
            seq += 1;
            let level = rng.pick(&["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]);
            let _ = write!(s, "{seq:08} {level} worker[{}]:", rng.range(100, 999));
            for _ in 0..rng.range(4, 12) {
                s.push(' ');
                let word = rng.pick(WORDS);
                s.push_str(word);
            }
            s.push('\n');
        }
    }
    let mut data = s.into_bytes();
    data.truncate(raw);
    data
}

/// RFC 2231 value characters: keep alphanumerics and `-._`, escape the rest.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn person(rng: &mut Rng) -> (Cow<'static, str>, String) {
    let (name, local): (Cow<'static, str>, String) = if rng.chance(0.2) {
        let (name, local) = *rng.pick(UNI_NAMES);
        (Cow::Borrowed(name), local.to_owned())
    } else {
        let first = *rng.pick(FIRST);
        let last = *rng.pick(LAST);
        (
            Cow::Owned(format!("{first} {last}")),
            first.to_ascii_lowercase(),
        )
    };
    let addr = format!("{local}.{}@{}", rng.below(100), rng.pick(DOMAINS));
    (name, addr)
}

/// `Name <addr>`, the name RFC 2047-encoded when not ASCII.
fn mailbox(name: &str, addr: &str, b: bool) -> String {
    if name.is_ascii() {
        format!("{name} <{addr}>")
    } else {
        format!("{} <{addr}>", encoded_words(name, b))
    }
}

/// RFC 2047 encoded words (UTF-8, B or Q), each at most 60 characters, so a
/// header line holding one stays within 78. Spaces of the text are inside
/// the words (whitespace between encoded words is not part of the text).
fn encoded_words(text: &str, b: bool) -> String {
    let limit = if b { 36 } else { 48 }; // bytes (B) or Q characters
    let cost = |ch: char| {
        if b {
            ch.len_utf8()
        } else if ch.is_ascii_alphanumeric() || ch == ' ' {
            1
        } else {
            3 * ch.len_utf8()
        }
    };
    let mut out = String::new();
    let mut chunk = String::new();
    let mut used = 0;
    for ch in text.chars() {
        if used + cost(ch) > limit {
            encoded_word(&chunk, b, &mut out);
            chunk.clear();
            used = 0;
        }
        chunk.push(ch);
        used += cost(ch);
    }
    encoded_word(&chunk, b, &mut out);
    out
}

fn encoded_word(chunk: &str, b: bool, out: &mut String) {
    if chunk.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    if b {
        out.push_str("=?UTF-8?B?");
        STANDARD.encode_string(chunk.as_bytes(), out);
    } else {
        out.push_str("=?UTF-8?Q?");
        for byte in chunk.bytes() {
            match byte {
                b' ' => out.push('_'),
                _ if byte.is_ascii_alphanumeric() => out.push(char::from(byte)),
                _ => {
                    let _ = write!(out, "={byte:02X}");
                }
            }
        }
    }
    out.push_str("?=");
}

/// `Name: value`, folded at spaces so lines stay within 78 characters (no
/// token here is longer than about 65).
fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    let mut col = name.len() + 1;
    for (k, token) in value.split(' ').filter(|t| !t.is_empty()).enumerate() {
        if k > 0 && col + 1 + token.len() > 78 {
            out.push_str("\n ");
            col = 1;
        } else {
            out.push(' ');
            col += 1;
        }
        out.push_str(token);
        col += token.len();
    }
    out.push('\n');
}

/// RFC 5322 date of Unix time `ts` in the zone `offset` minutes east of UTC:
/// `Fri, 01 Jan 2021 00:00:00 +0000`.
fn rfc5322_date(ts: i64, offset: i32) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = ts + i64::from(offset) * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        DAYS[weekday],
        MONTHS[(m - 1) as usize],
        secs / 3_600,
        secs / 60 % 60,
        secs % 60,
        abs / 60,
        abs % 60,
    )
}

/// IMAP modified UTF-7 (RFC 3501 5.1.3), how Dovecot names folders on disk.
fn mutf7(name: &str) -> String {
    const MUTF7: GeneralPurpose =
        GeneralPurpose::new(&alphabet::IMAP_MUTF7, general_purpose::NO_PAD);
    fn flush(pending: &mut Vec<u8>, out: &mut String) {
        if !pending.is_empty() {
            out.push('&');
            MUTF7.encode_string(&pending[..], out);
            out.push('-');
            pending.clear();
        }
    }
    let mut out = String::with_capacity(name.len());
    let mut pending = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                pending.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_closely() {
        for x in [
            -3.0,
            -0.5,
            0.0,
            0.3,
            1.0,
            std::f64::consts::LN_10,
            8.85,
            10.6,
        ] {
            let (a, b) = (exp_exact(x), f64::exp(x));
            assert!(((a - b) / b).abs() < 1e-14, "{x}: {a} vs {b}");
        }
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(START, 0), "Fri, 01 Jan 2021 00:00:00 +0000");
        assert_eq!(rfc5322_date(START, -300), "Thu, 31 Dec 2020 19:00:00 -0500");
        assert_eq!(
            rfc5322_date(951_782_400, 330),
            "Tue, 29 Feb 2000 05:30:00 +0530"
        );
    }

    #[test]
    fn mutf7_as_dovecot() {
        assert_eq!(mutf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(mutf7("Ünter"), "&ANw-nter");
        assert_eq!(mutf7("A&B"), "A&-B");
        assert_eq!(mutf7("日本語"), "&ZeVnLIqe-");
    }

    #[test]
    fn quoted_printable_lines_are_short() {
        let text = format!("{}\n{} \n", "é".repeat(100), "x".repeat(200));
        let mut out = String::new();
        quoted_printable(&text, &mut out);
        assert!(out.lines().all(|l| l.len() <= 76), "{out}");
        assert!(out.contains("=C3=A9"));
        assert!(out.contains("=20\n"), "trailing space is encoded");
    }
}
