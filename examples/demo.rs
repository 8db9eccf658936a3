//! The demo: a real two-way sync against a throwaway local Dovecot.
//!
//! `./scripts/demo` (or `cargo run --release --example demo`) starts a
//! private Dovecot on 127.0.0.1 with a generated mailbox of a few thousand
//! messages, writes a ferry config, runs `ferry sync` into a fresh Maildir,
//! then changes flags and moves a message on both sides (as a phone and as
//! mutt would), syncs again, shows what happened, and removes everything.

use ferry_testkit::corpus::{self, CorpusSpec, Sizes};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::error::Error;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MESSAGES: usize = 3000;

fn ferry_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/examples/demo -> target/<profile>/ferry
    exe.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("ferry"))
        .unwrap_or_else(|| PathBuf::from("ferry"))
}

fn run_ferry(config: &Path, args: &[&str]) -> Result<String, Box<dyn Error>> {
    let started = Instant::now();
    let output = Command::new(ferry_binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("FERRY_DEMO_PW", USER.password)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!(
        "$ ferry {}   ({:.2} s, exit {})",
        args.join(" "),
        started.elapsed().as_secs_f64(),
        output.status.code().unwrap_or(-1)
    );
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(format!("ferry {} failed", args.join(" ")).into());
    }
    Ok(stdout)
}

/// The files of a local folder as (path, info letters).
fn files(folder: &Path) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = ["new", "cur"]
        .iter()
        .flat_map(|sub| {
            fs::read_dir(folder.join(sub))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let info = name
                .split_once(":2,")
                .map(|(_, i)| i.to_string())
                .unwrap_or_default();
            (e.path(), info)
        })
        .collect();
    out.sort();
    out
}

fn main() -> Result<(), Box<dyn Error>> {
    println!(
        "Starting a throwaway Dovecot with {MESSAGES} generated messages (INBOX, Archive, Sent)..."
    );
    let spec = CorpusSpec {
        seed: 2026,
        count: MESSAGES,
        sizes: Sizes::Realistic,
        folders: vec![
            ("INBOX".into(), 60),
            ("Archive".into(), 30),
            ("Sent".into(), 10),
        ],
    };
    let options = DovecotOptions::default();
    let layout = options.layout.into();
    let dovecot = Dovecot::start_with(options, |root| {
        corpus::write_maildir(&spec, root, layout).map(drop)
    })?;
    let home = tempfile::tempdir()?;
    let maildir = home.path().join("Mail");
    let config = home.path().join("config.toml");
    fs::write(
        &config,
        format!(
            "state_dir = \"{root}/state\"\n\n[accounts.demo]\nhost = \"127.0.0.1\"\nport = {port}\n\
             tls = \"implicit\"\nca_file = \"{ca}\"\nuser = \"{user}\"\npassword_env = \"FERRY_DEMO_PW\"\n\
             maildir = \"{maildir}\"\n",
            root = home.path().display(),
            port = dovecot.imaps_port(),
            ca = dovecot.cert_pem_path().display(),
            user = USER.name,
            maildir = maildir.display(),
        ),
    )?;
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600))?;
    println!("Config written to {}\n", config.display());

    run_ferry(&config, &["sync"])?;
    println!(
        "\nThe Maildir now holds {} messages in INBOX.\n",
        files(&maildir.join("INBOX")).len()
    );
    run_ferry(&config, &["sync"])?;

    println!("\nNow a phone flags the newest server message and moves another to Archive,");
    println!("and mutt marks a local message read and moves one to Archive...\n");
    let mut phone = dovecot.client()?;
    let server = dovecot.messages(USER, "INBOX")?;
    let (newest, moved) = (server[server.len() - 1].uid, server[server.len() - 2].uid);
    phone.add_flags("INBOX", &[newest], &["\\Flagged"])?;
    phone.move_messages("INBOX", &[moved], "Archive")?;
    let local = files(&maildir.join("INBOX"));
    let unread = local.iter().position(|(_, info)| !info.contains('S'));
    if let Some((path, info)) = unread.map(|i| &local[i]) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = name.split(":2,").next().unwrap_or_default();
        let mut letters: Vec<char> = info.chars().chain(['S']).collect();
        letters.sort_unstable();
        let target = maildir.join("INBOX/cur").join(format!(
            "{key}:2,{}",
            letters.into_iter().collect::<String>()
        ));
        fs::rename(path, target)?;
    }
    let other = (0..local.len()).find(|i| Some(*i) != unread);
    if let Some((path, _)) = other.map(|i| &local[i]) {
        if let Some(name) = path.file_name() {
            fs::rename(path, maildir.join("Archive/cur").join(name))?;
        }
    }
    run_ferry(&config, &["plan"])?;
    run_ferry(&config, &["sync"])?;
    run_ferry(&config, &["sync"])?;
    println!("\nDone: the server and the Maildir agree again. Everything is removed now.");
    Ok(())
}
