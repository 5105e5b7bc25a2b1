//! The other reports of bench/ (the payments load test, the chaos run, the daily autopay
//! run at scale), summed up in bench/results.md so that one page shows every figure. Each
//! is written by its own run; the summary quotes the parts that carry its verdict and
//! says when it was written, so an old report reads as old.

use std::fmt::Write as _;
use std::path::Path;

/// One companion report and the parts of it results.md quotes.
struct Companion {
    file: &'static str,
    title: &'static str,
    command: &'static str,
    /// Second-level sections quoted whole, in this order.
    sections: &'static [&'static str],
    /// Whether the tables before the first section are quoted (the autopay run's
    /// summary table sits there).
    leading_tables: bool,
}

const COMPANIONS: &[Companion] = &[
    Companion {
        file: "load-results.md",
        title: "Payments load test",
        command: "bash bench/run.sh load",
        sections: &["Checks", "Results"],
        leading_tables: false,
    },
    Companion {
        file: "chaos-results.md",
        title: "Chaos run",
        command: "bash bench/run.sh chaos",
        sections: &["Faults injected", "Invariants"],
        leading_tables: false,
    },
    Companion {
        file: "autopays-results.md",
        title: "The daily autopay run at scale",
        command: "bash bench/run.sh autopays",
        sections: &["Checks"],
        leading_tables: true,
    },
];

/// The "Load, chaos and the daily autopay run" part of results.md, read from the
/// reports next to it in `bench_dir`.
pub fn render(bench_dir: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Load, chaos and the daily autopay run\n");
    let _ = writeln!(
        md,
        "Quoted from the reports these runs write next to this file, each with the date it \
         was written; they run the functions in debug builds on a local stack of their own, \
         so their timings compare only with their own earlier runs.\n"
    );
    for companion in COMPANIONS {
        let _ = writeln!(md, "### {}\n", companion.title);
        match std::fs::read_to_string(bench_dir.join(companion.file)) {
            Ok(text) => md.push_str(&quote(companion, &text)),
            Err(_) => {
                let _ = writeln!(
                    md,
                    "Not run yet: `{}` writes [{}]({}).\n",
                    companion.command, companion.file, companion.file
                );
            }
        }
    }
    md
}

fn quote(companion: &Companion, text: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "From [{file}]({file}) (`{}`){}.\n",
        companion.command,
        match written(text) {
            Some(date) => format!(", written {date}"),
            None => String::new(),
        },
        file = companion.file,
    );
    if let Some(verdict) = verdict(text) {
        let _ = writeln!(md, "{verdict}\n");
    }
    if companion.leading_tables {
        let tables = leading_tables(text);
        if !tables.is_empty() {
            let _ = writeln!(md, "{tables}\n");
        }
    }
    for name in companion.sections {
        match section(text, name) {
            Some(body) => {
                let _ = writeln!(md, "#### {name}\n\n{body}\n");
            }
            None => {
                let _ = writeln!(md, "#### {name}\n\nNot in the report.\n");
            }
        }
    }
    md
}

/// The first date-and-time the report gives (`2026-12-05 08:26 UTC`), or its date alone.
fn written(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(10)).find_map(|i| {
        let candidate = text.get(i..i + 10)?;
        let is_date = candidate.bytes().enumerate().all(|(j, b)| match j {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        }) && candidate.starts_with("20");
        if !is_date || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            return None;
        }
        let time = text
            .get(i + 10..i + 20)
            .filter(|t| t.starts_with(' ') && t.ends_with(" UTC") && t.as_bytes()[3] == b':');
        Some(match time {
            Some(t) => format!("{candidate}{t}"),
            None => candidate.to_string(),
        })
    })
}

/// The report's verdict: its first sentence in bold (`**Every check passed.**`).
fn verdict(text: &str) -> Option<String> {
    let start = text.find("**")?;
    let end = text[start + 2..].find("**")? + start + 4;
    Some(text[start..end].to_string())
}

/// The tables between the title and the first second-level section.
fn leading_tables(text: &str) -> String {
    text.lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| !line.starts_with("## "))
        .filter(|line| line.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A second-level section's body, up to the next second-level heading; its own
/// subsections are left out (the summary quotes the headline tables only).
fn section(text: &str, name: &str) -> Option<String> {
    let heading = format!("## {name}");
    let mut lines = text.lines().skip_while(|line| line.trim_end() != heading);
    lines.next()?;
    let body: Vec<&str> = lines
        .take_while(|line| !line.starts_with("## ") && !line.starts_with("### "))
        .collect();
    Some(body.join("\n").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOAD: &str = "# Payments load test\n\nWritten by `uslugi-bench load`. **Every check passed.** Timings are one run.\n\n- Run: 2026-11-26 10:56 UTC · seed 1\n\n## Checks\n\n| Check | |\n|---|---|\n| books | pass |\n\n## What ran\n\n- Stack\n\n## Results\n\n| | |\n|---|---|\n| throughput | 8.1 payments/s |\n\n### Answers\n\n| status | n |\n";

    #[test]
    fn quotes_the_verdict_the_date_and_the_named_sections_only() {
        let md = quote(&COMPANIONS[0], LOAD);
        assert!(md.contains("written 2026-11-26 10:56 UTC"), "{md}");
        assert!(md.contains("**Every check passed.**"), "{md}");
        assert!(md.contains("| books | pass |"), "{md}");
        assert!(md.contains("| throughput | 8.1 payments/s |"), "{md}");
        assert!(!md.contains("- Stack"), "{md}");
        assert!(!md.contains("| status | n |"), "{md}");
    }

    #[test]
    fn a_missing_section_is_said_to_be_missing() {
        let md = quote(&COMPANIONS[1], "# Chaos run\n\n2026-12-05 08:26 UTC\n");
        assert!(md.contains("written 2026-12-05 08:26 UTC"), "{md}");
        assert!(md.contains("#### Invariants\n\nNot in the report."), "{md}");
    }

    #[test]
    fn the_autopay_run_quotes_its_summary_table() {
        let text = "# The daily autopay run at scale\n\nOn 2026-12-05.\n\n| | |\n|---|---|\n| autopays due | 5000 |\n\n## Checks\n\n| check | |\n|---|---|\n| every bill paid | ok |\n";
        let md = quote(&COMPANIONS[2], text);
        assert!(md.contains("written 2026-12-05."), "{md}");
        assert!(md.contains("| autopays due | 5000 |"), "{md}");
        assert!(md.contains("| every bill paid | ok |"), "{md}");
    }

    #[test]
    fn a_report_not_written_yet_says_how_to_write_it() {
        let dir = std::env::temp_dir().join(format!("uslugi-companions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let md = render(&dir);
        assert!(
            md.contains("Not run yet: `bash bench/run.sh chaos`"),
            "{md}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
