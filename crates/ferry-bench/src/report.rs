//! Results: one TSV row per timed run, and the markdown table of medians
//! with ferry's ratio to each peer.

use crate::cli::ToolName;
use crate::phase::Phase;
use crate::server::{Traffic, Wire};
use crate::timing::Usage;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The TSV header line (without newline).
pub const TSV_HEADER: &str = "tool\tsize\tprofile\tcompress\tphase\trep\tchanged\twall_s\tuser_s\tsys_s\tmaxrss_kib\texit\tlogins\tsrv_in_bytes\tsrv_out_bytes\twire_in_bytes\twire_out_bytes\tcheck\tdetail";

/// One timed run.
#[derive(Debug, Clone)]
pub struct Row {
    /// The tool.
    pub tool: ToolName,
    /// The size label ("20k").
    pub size: String,
    /// The profile label ("loopback").
    pub profile: &'static str,
    /// Whether the server offered COMPRESS=DEFLATE.
    pub compress: bool,
    /// The phase.
    pub phase: Phase,
    /// Repetition, from 1.
    pub rep: u32,
    /// Messages changed before the run.
    pub changed: usize,
    /// Time and memory.
    pub usage: Usage,
    /// Dovecot's counters of the run's sessions.
    pub traffic: Traffic,
    /// Bytes through the proxy (rtt25 only).
    pub wire: Option<Wire>,
    /// "ok", or what failed ("MISMATCH", "exit 3", "error").
    pub check: String,
    /// The check's detail.
    pub detail: String,
}

impl Row {
    /// Whether the run passed its check.
    pub fn ok(&self) -> bool {
        self.check == "ok"
    }

    /// The row as a TSV line (without newline).
    pub fn tsv(&self) -> String {
        let wire = |f: fn(&Wire) -> u64| {
            self.wire
                .as_ref()
                .map_or("-".to_owned(), |w| f(w).to_string())
        };
        [
            self.tool.label().to_owned(),
            self.size.clone(),
            self.profile.to_owned(),
            on_off(self.compress).to_owned(),
            self.phase.label().to_owned(),
            self.rep.to_string(),
            self.changed.to_string(),
            format!("{:.4}", self.usage.wall),
            format!("{:.2}", self.usage.user),
            format!("{:.2}", self.usage.sys),
            self.usage.maxrss_kib.to_string(),
            self.usage.exit.clone(),
            self.traffic.logins.to_string(),
            self.traffic.bytes_in.to_string(),
            self.traffic.bytes_out.to_string(),
            wire(|w| w.to_server),
            wire(|w| w.to_client),
            self.check.clone(),
            self.detail.replace(['\t', '\n'], " "),
        ]
        .join("\t")
    }
}

/// "on" or "off".
pub fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The median, if there are values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// ferry's time as a fraction of the peer's ("0.25": ferry takes a quarter
/// of the peer's time).
pub fn ratio(ferry: f64, peer: f64) -> String {
    if peer > 0.0 && ferry.is_finite() {
        format!("{:.2}", ferry / peer)
    } else {
        "n/a".to_owned()
    }
}

/// Seconds with a precision that suits their size.
pub fn seconds(value: f64) -> String {
    match value {
        v if v < 1.0 => format!("{v:.3}"),
        v if v < 100.0 => format!("{v:.2}"),
        v => format!("{v:.1}"),
    }
}

/// Bytes as KiB (one decimal below 10 KiB).
pub fn kib(bytes: f64) -> String {
    let kib = bytes / 1024.0;
    if kib < 10.0 {
        format!("{kib:.1}")
    } else {
        format!("{kib:.0}")
    }
}

/// The medians of one (tool, phase).
struct Summary {
    runs: usize,
    failed: usize,
    wall: f64,
    user: f64,
    sys: f64,
    maxrss_kib: f64,
    srv_in: f64,
    srv_out: f64,
    wire: Option<(f64, f64)>,
}

impl Summary {
    fn of(rows: &[&Row]) -> Summary {
        let med = |f: &dyn Fn(&Row) -> f64| {
            median(&rows.iter().map(|r| f(r)).collect::<Vec<_>>()).unwrap_or(f64::NAN)
        };
        let wire = rows.iter().all(|r| r.wire.is_some()).then(|| {
            (
                med(&|r| r.wire.map_or(0.0, |w| w.to_server as f64)),
                med(&|r| r.wire.map_or(0.0, |w| w.to_client as f64)),
            )
        });
        Summary {
            runs: rows.len(),
            failed: rows.iter().filter(|r| !r.ok()).count(),
            wall: med(&|r| r.usage.wall),
            user: med(&|r| r.usage.user),
            sys: med(&|r| r.usage.sys),
            maxrss_kib: med(&|r| r.usage.maxrss_kib as f64),
            srv_in: med(&|r| r.traffic.bytes_in as f64),
            srv_out: med(&|r| r.traffic.bytes_out as f64),
            wire,
        }
    }
}

/// The markdown tables: one per (size, profile, COMPRESS), a row per phase
/// and tool with medians, and ferry's wall time divided by each peer's.
pub fn markdown(rows: &[Row]) -> String {
    let mut sections: BTreeMap<(String, &str, bool), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let key = (row.size.clone(), row.profile, row.compress);
        sections.entry(key).or_default().push(row);
    }
    let mut out = String::new();
    for ((size, profile, compress), rows) in sections {
        let ferry_compress = if compress { "always" } else { "never" };
        let _ = writeln!(
            out,
            "### size {size}, {profile}, server COMPRESS=DEFLATE {} (ferry: compress = \"{ferry_compress}\")\n",
            on_off(compress)
        );
        section(&mut out, &rows);
        out.push('\n');
    }
    out
}

fn section(out: &mut String, rows: &[&Row]) {
    let with_wire = rows.iter().any(|r| r.wire.is_some());
    out.push_str("| phase | tool | runs | wall s | ferry ÷ tool | user s | sys s | max RSS MiB | server in/out KiB |");
    out.push_str(if with_wire {
        " wire in/out KiB | checks |\n"
    } else {
        " checks |\n"
    });
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    out.push_str(if with_wire {
        " ---: | --- |\n"
    } else {
        " --- |\n"
    });
    let mut groups: BTreeMap<(Phase, ToolName), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        groups.entry((row.phase, row.tool)).or_default().push(row);
    }
    for ((phase, tool), group) in &groups {
        let summary = Summary::of(group);
        let ferry = groups
            .get(&(*phase, ToolName::Ferry))
            .map(|rows| Summary::of(rows).wall);
        let versus = match (tool, ferry) {
            (ToolName::Ferry, _) | (_, None) => "–".to_owned(),
            (_, Some(ferry)) => ratio(ferry, summary.wall),
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {versus} | {} | {} | {:.1} | {} / {} |",
            phase.label(),
            tool.label(),
            summary.runs,
            seconds(summary.wall),
            seconds(summary.user),
            seconds(summary.sys),
            summary.maxrss_kib / 1024.0,
            kib(summary.srv_in),
            kib(summary.srv_out),
        );
        if with_wire {
            let wire = summary
                .wire
                .map_or("-".to_owned(), |(i, o)| format!("{} / {}", kib(i), kib(o)));
            let _ = write!(out, " {wire} |");
        }
        let checks = if summary.failed == 0 {
            "ok".to_owned()
        } else {
            format!("**{} of {} failed**", summary.failed, summary.runs)
        };
        let _ = writeln!(out, " {checks} |");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tool: ToolName, phase: Phase, rep: u32, wall: f64, check: &str) -> Row {
        Row {
            tool,
            size: "2000".into(),
            profile: "loopback",
            compress: false,
            phase,
            rep,
            changed: 20,
            usage: Usage {
                wall,
                user: 0.5,
                sys: 0.25,
                maxrss_kib: 10240,
                exit: "0".into(),
            },
            traffic: Traffic {
                logins: 1,
                bytes_in: 2048,
                bytes_out: 4096,
            },
            wire: None,
            check: check.into(),
            detail: "server(msgs,seen,flagged)=(1, 1, 0)\tlocal".into(),
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 2.0]), Some(2.0));
    }

    #[test]
    fn ratios_and_seconds() {
        assert_eq!(ratio(1.0, 4.0), "0.25");
        assert_eq!(ratio(3.0, 2.0), "1.50");
        assert_eq!(ratio(1.0, 0.0), "n/a");
        assert_eq!(seconds(0.01234), "0.012");
        assert_eq!(seconds(12.345), "12.35");
        assert_eq!(seconds(123.45), "123.5");
        assert_eq!(kib(512.0), "0.5");
        assert_eq!(kib(20480.0), "20");
    }

    #[test]
    fn tsv_rows() {
        let line = row(ToolName::Mbsync, Phase::Noop, 2, 0.5, "ok").tsv();
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), TSV_HEADER.split('\t').count());
        assert_eq!(
            &fields[..8],
            [
                "mbsync", "2000", "loopback", "off", "noop", "2", "20", "0.5000"
            ]
        );
        assert_eq!(fields[15], "-");
        assert!(!fields[18].contains('\t'));
    }

    #[test]
    fn table_has_medians_ratios_and_failures() {
        let rows = vec![
            row(ToolName::Ferry, Phase::Noop, 1, 0.01, "ok"),
            row(ToolName::Ferry, Phase::Noop, 2, 0.03, "ok"),
            row(ToolName::Ferry, Phase::Noop, 3, 0.02, "ok"),
            row(ToolName::Mbsync, Phase::Noop, 1, 0.08, "ok"),
            row(ToolName::Mbsync, Phase::Noop, 2, 0.08, "MISMATCH"),
            row(ToolName::Ferry, Phase::Initial, 1, 2.0, "ok"),
        ];
        let table = markdown(&rows);
        assert!(table.starts_with(
            "### size 2000, loopback, server COMPRESS=DEFLATE off (ferry: compress = \"never\")\n"
        ));
        assert!(table.contains("| initial | ferry | 1 | 2.00 | – |"));
        assert!(
            table.contains(
                "| noop | ferry | 3 | 0.020 | – | 0.500 | 0.250 | 10.0 | 2.0 / 4.0 | ok |"
            )
        );
        assert!(table.contains("| noop | mbsync | 2 | 0.080 | 0.25 |"));
        assert!(table.contains("**1 of 2 failed**"));
        let initial = table.find("| initial |").expect("initial row");
        let noop = table.find("| noop |").expect("noop row");
        assert!(initial < noop);
    }
}
