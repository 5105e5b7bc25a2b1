//! bench/results.md: the tables and how they were measured.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::hashing::HashCost;
use crate::measure::{ColdStart, FunctionResult, Sample, WarmRun, FLOOR_BINARY};
use crate::stats::{grouped, mib, mib_from_kib, ms, ms_cells, percentile};
use crate::system::MachineInfo;
use shared::passwords;

pub struct Run<'a> {
    pub machine: &'a MachineInfo,
    pub results: &'a [FunctionResult],
    /// Cold starts of the floor binary (see [`crate::measure::floor`]).
    pub floor: &'a [ColdStart],
    /// Hashing timed in the harness, when a function that hashes passwords was measured.
    pub hashing: Option<&'a HashCost>,
    pub cold_starts: usize,
    pub invocations: usize,
    pub elapsed: Duration,
    /// The load, chaos and autopay reports, summed up (see [`crate::companions`]).
    pub companions: String,
}

pub fn render(run: &Run) -> String {
    let mut md = String::new();
    let m = run.machine;
    let _ = writeln!(md, "# Benchmark results\n");
    let _ = writeln!(
        md,
        "Written by `bench/run.sh` (`uslugi-bench`) on {}; the run took {:.0} s after the build. Figures come from \
         one run on one machine: compare them with runs on the same machine, and read the \
         latencies as relative (see [Method](#method)).\n",
        m.date,
        run.elapsed.as_secs_f64()
    );
    let _ = writeln!(md, "| Machine | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", m.cpu_model);
    let _ = writeln!(md, "| `nproc` | {} |", m.nproc);
    let _ = writeln!(md, "| Memory | {} |", m.memory);
    let _ = writeln!(md, "| Kernel | Linux {} |", m.kernel);
    let _ = writeln!(md, "| Compiler | {} |", m.rustc);
    let _ = writeln!(md, "| Build | {} |", m.cargo_lambda);
    let _ = writeln!(md, "| AWS stand-in | moto {} |", m.moto);

    let _ = writeln!(md, "\n## Summary\n");
    let _ = writeln!(
        md,
        "Cold start = init (exec → first `next`) + the first response (its first event → its \
         answer). The first row is the floor: a process that only asks the Runtime API for its \
         event and answers it (no AWS SDK, no configuration); \"above the floor\" is each \
         function's cold start p50 minus the floor's.\n"
    );
    let _ = writeln!(
        md,
        "| Function | Arch | Binary | Zip | Cold start p50 | Cold start p90 | above the floor | init p50 | first response p50 | RSS after init | Peak RSS after {} invocations |",
        grouped(run.invocations as u64)
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let floor_p50 = percentile(&totals(run.floor), 50.0);
    let _ = writeln!(
        md,
        "| *floor* (`{FLOOR_BINARY}`) | | | | {} | {} | — | {} | {} | | |",
        ms(floor_p50),
        ms(percentile(&totals(run.floor), 90.0)),
        ms(percentile(&inits(run.floor), 50.0)),
        ms(percentile(&firsts(run.floor), 50.0)),
    );
    for r in run.results {
        let (after_init, peak) = match &r.warm {
            Some(w) => (
                mib_from_kib(w.after_init.rss_kib),
                if over_memory(r, w) {
                    format!(
                        "**{}** (over {} MB)",
                        mib_from_kib(w.after_run.hwm_kib),
                        r.spec.memory_mb
                    )
                } else {
                    mib_from_kib(w.after_run.hwm_kib)
                },
            ),
            None => ("—".into(), "—".into()),
        };
        let totals = totals(&r.cold);
        // A function the bench sends no event has an init only: shown as such, never as
        // a cold start.
        let (p50, p90, above, first) = if totals.len() == r.cold.len() && !totals.is_empty() {
            let p50 = percentile(&totals, 50.0);
            (
                ms(p50),
                ms(percentile(&totals, 90.0)),
                format!("+{}", ms(p50.saturating_sub(floor_p50))),
                ms(percentile(&firsts(&r.cold), 50.0)),
            )
        } else {
            ("— (no event)".into(), "—".into(), "—".into(), "—".into())
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.spec.binary,
            r.package.arch,
            mib(r.package.binary_bytes),
            mib(r.package.zip_bytes),
            p50,
            p90,
            above,
            ms(percentile(&inits(&r.cold), 50.0)),
            first,
            after_init,
            peak
        );
    }

    let _ = writeln!(md, "\n### Warm latency per route\n");
    let _ = writeln!(
        md,
        "| Function | Route | Invocations | p50 | p99 | of which AWS calls (p50) |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|");
    for r in run.results {
        let Some(w) = &r.warm else {
            let _ = writeln!(md, "| {} | — (no HTTP routes) | | | | |", r.spec.binary);
            continue;
        };
        for (route, samples) in group(&w.samples, |s| s.label.route.clone()) {
            let _ = writeln!(
                md,
                "| {} | `{route}` | {} | {} | {} | {} |",
                r.spec.binary,
                grouped(samples.len() as u64),
                ms(latency(&samples, 50.0)),
                ms(latency(&samples, 99.0)),
                ms(aws_time(&samples, 50.0)),
            );
        }
    }

    hashing_section(&mut md, run);
    throughput_section(&mut md, run);
    let _ = writeln!(md);
    md.push_str(&run.companions);
    for r in run.results {
        function_section(&mut md, r, run);
    }
    method(&mut md, run);
    md
}

/// All AWS calls of the samples over all their units of work (`12.4`), or `—`.
fn calls_per_item(samples: &[Sample]) -> String {
    let items: usize = samples.iter().filter_map(|s| s.label.items).sum();
    let calls: usize = samples
        .iter()
        .filter(|s| s.label.items.is_some())
        .map(|s| s.calls.len())
        .sum();
    if items == 0 {
        "—".into()
    } else {
        format!("{:.1}", calls as f64 / items as f64)
    }
}

fn inits(cold: &[ColdStart]) -> Vec<Duration> {
    cold.iter().map(|c| c.init).collect()
}

fn firsts(cold: &[ColdStart]) -> Vec<Duration> {
    cold.iter()
        .filter_map(|c| c.first.as_ref().map(|f| f.latency))
        .collect()
}

fn totals(cold: &[ColdStart]) -> Vec<Duration> {
    cold.iter().filter_map(ColdStart::total).collect()
}

/// `min a, p50 b, p90 c, max d`.
fn spread(samples: &[Duration]) -> String {
    let min = samples.iter().min().copied().unwrap_or_default();
    let max = samples.iter().max().copied().unwrap_or_default();
    format!(
        "min {}, p50 {}, p90 {}, max {}",
        ms(min),
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 90.0)),
        ms(max)
    )
}

/// Whether the process used more memory than Lambda would have given it (MemorySize is
/// in MB, as Lambda counts: MiB).
fn over_memory(r: &FunctionResult, w: &WarmRun) -> bool {
    w.after_run.hwm_kib > r.spec.memory_mb.saturating_mul(1024)
}

/// Samples grouped by request case.
type CaseGroups = Vec<(String, Vec<Sample>)>;

/// The cost of argon2id: timed directly in the harness, and as it shows in the functions'
/// requests that run it.
fn hashing_section(md: &mut String, run: &Run) {
    let hashing_samples: Vec<(&FunctionResult, CaseGroups)> = run
        .results
        .iter()
        .filter_map(|r| {
            let w = r.warm.as_ref()?;
            let groups: Vec<_> = group(&w.samples, |s| s.label.case.clone())
                .into_iter()
                .filter(|(_, samples)| samples[0].label.argon2 > 0)
                .collect();
            (!groups.is_empty()).then_some((r, groups))
        })
        .collect();
    if run.hashing.is_none() && hashing_samples.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Password hashing\n");
    let _ = writeln!(
        md,
        "argon2id as `shared/src/passwords.rs` sets it: version 0x13, {} KiB ({} MiB) of \
         memory, {} passes, {} {}, a random 16-byte salt per hash, stored as a PHC string. A \
         login that names no account is verified against a dummy hash with the same \
         parameters.\n",
        grouped(u64::from(passwords::MEMORY_KIB)),
        passwords::MEMORY_KIB / 1024,
        passwords::PASSES,
        passwords::LANES,
        if passwords::LANES == 1 {
            "lane"
        } else {
            "lanes"
        },
    );
    if let Some(h) = run.hashing {
        let _ = writeln!(
            md,
            "Timed in the harness, which calls `shared::passwords` itself before any function \
             runs (one untimed round first). The harness is built with the tools workspace's \
             release profile (`opt-level = 3`, no LTO), not the functions' (`opt-level = \"s\"`, \
             thin LTO), so the functions' own figures below are the ones that apply to the \
             deployed code.\n"
        );
        let _ = writeln!(md, "| Operation | Runs | p50 | p90 | max |");
        let _ = writeln!(md, "|---|--:|--:|--:|--:|");
        for (name, v) in [
            ("`passwords::hash`", &h.hash),
            ("`passwords::verify`, right password", &h.verify),
            (
                "`passwords::verify`, no account (dummy hash)",
                &h.verify_unknown,
            ),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {} |",
                v.len(),
                ms_cells(v, &[50.0, 90.0, 100.0]),
            );
        }
    }
    if hashing_samples.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\nIn the functions' release binaries, the requests that run argon2id: their own time \
         is the latency minus the AWS calls (as the proxy timed them), so it holds the hashing \
         plus the rest of the request's own work (parsing, HMACs, building, signing and \
         reading the AWS requests), a millisecond or two in requests that do not hash \
         (compare `codes`).\n"
    );
    let _ = writeln!(
        md,
        "| Function | Request | argon2id runs | Count | Latency p50 | Own time p50 | Own time per argon2id run |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|");
    for (r, groups) in hashing_samples {
        for (case, samples) in groups {
            let runs = samples[0].label.argon2;
            let own = percentile(&own_times(&samples), 50.0);
            let _ = writeln!(
                md,
                "| {} | {case} | {runs} | {} | {} | {} | {} |",
                r.spec.binary,
                samples.len(),
                ms(latency(&samples, 50.0)),
                ms(own),
                ms(own / runs),
            );
        }
    }
}

fn own_times(samples: &[Sample]) -> Vec<Duration> {
    samples
        .iter()
        .map(|s| s.latency.saturating_sub(s.aws_time()))
        .collect()
}

fn function_section(md: &mut String, r: &FunctionResult, run: &Run) {
    let _ = writeln!(md, "\n## {}\n", r.spec.binary);
    let _ = writeln!(
        md,
        "`{}` in infra/template.yaml: {} MB, {} s timeout, deployed as {}.\n",
        r.spec.logical_id,
        r.spec.memory_mb,
        r.spec.timeout_s,
        r.spec.architectures.join(", ")
    );
    let env: Vec<String> = r
        .spec
        .env
        .iter()
        .map(|(k, v)| {
            if r.spec.secret_env.contains(k) {
                format!("`{k}` (random, {} characters)", v.chars().count())
            } else {
                format!("`{k}={v}`")
            }
        })
        .collect();
    let _ = writeln!(md, "- Template environment, resolved: {}.", env.join(", "));
    let _ = writeln!(
        md,
        "- Binary {} bytes, zip {} bytes ({:.0} % of the binary).",
        grouped(r.package.binary_bytes),
        grouped(r.package.zip_bytes),
        r.package.zip_bytes as f64 * 100.0 / r.package.binary_bytes.max(1) as f64
    );
    let totals = totals(&r.cold);
    if totals.len() == r.cold.len() && !totals.is_empty() {
        let mut cases: Vec<&str> = Vec::new();
        for c in r.cold.iter().filter_map(|c| c.first.as_ref()) {
            if !cases.contains(&c.case.as_str()) {
                cases.push(&c.case);
            }
        }
        let mut calls: Vec<usize> = r
            .cold
            .iter()
            .filter_map(|c| c.first.as_ref().map(|f| f.calls))
            .collect();
        calls.sort_unstable();
        let _ = writeln!(
            md,
            "- Cold start (init + first response) over {} starts: {}; the floor's p50 is {}.",
            r.cold.len(),
            spread(&totals),
            ms(percentile(&self::totals(run.floor), 50.0)),
        );
        let _ = writeln!(
            md,
            "  - init: {}; first response: {} ({}; AWS calls: {}–{}).",
            spread(&inits(&r.cold)),
            spread(&firsts(&r.cold)),
            cases.join(", "),
            calls.first().copied().unwrap_or_default(),
            calls.last().copied().unwrap_or_default(),
        );
    } else {
        let _ = writeln!(
            md,
            "- Init over {} starts (no event sent: the bench has none for this function, so \
             this is not its whole cold start): {}.",
            r.cold.len(),
            spread(&inits(&r.cold)),
        );
    }
    let Some(w) = &r.warm else {
        let _ = writeln!(
            md,
            "- No warm run: the function has no HTTP routes and the bench has no scenario for it."
        );
        return;
    };
    warm_section(md, r, w, run);
}

fn warm_section(md: &mut String, r: &FunctionResult, w: &WarmRun, run: &Run) {
    let _ = writeln!(
        md,
        "- Memory: RSS {} after init ({} peak during init), peak {} after {} invocations (RSS then {}).",
        mib_from_kib(w.after_init.rss_kib),
        mib_from_kib(w.after_init.hwm_kib),
        mib_from_kib(w.after_run.hwm_kib),
        grouped(run.invocations as u64),
        mib_from_kib(w.after_run.rss_kib),
    );
    if over_memory(r, w) {
        let _ = writeln!(
            md,
            "- **The peak RSS is above the function's memory size ({} MB): on Lambda the \
             process would have been stopped during this run (`Runtime exited with error: \
             signal: killed`), failing the request in flight and costing a cold start.**",
            r.spec.memory_mb
        );
    }
    let _ = writeln!(
        md,
        "- Warm run: {}. The process serving it took {} to init; its first invocation ({}, answered {}) took {} and is left out of the warm figures.",
        w.describe,
        ms(w.init),
        w.first.label.case,
        w.first.status,
        ms(w.first.latency),
    );
    let _ = writeln!(
        md,
        "- AWS calls outside any invocation (init included): {}.",
        if w.outside_calls.is_empty() {
            "none".to_string()
        } else {
            call_counts(std::slice::from_ref(&w.outside_calls))
        }
    );
    if !r.overrides.is_empty() {
        let _ = writeln!(
            md,
            "- Set for the bench on top of the template: {}.",
            settings(&r.overrides)
        );
    }
    if let (Some(every), true) = (w.reset_every, w.resets > 0) {
        let _ = writeln!(
            md,
            "- The tables were emptied {} times, every {every} requests, between invocations and outside the timing (see Method).",
            w.resets
        );
    }
    let aws_errors: usize = w.samples.iter().map(Sample::aws_errors).sum();
    if aws_errors > 0 {
        let _ = writeln!(
            md,
            "- {aws_errors} AWS calls were answered with an error status by moto (counted in the table)."
        );
    }

    let per_item = w.samples.iter().any(|s| s.label.items.is_some());
    if per_item {
        let _ = writeln!(md, "\n| Request | Route | Status | Count | p50 | p99 | AWS calls (p50) | AWS calls per request | AWS calls per item |");
        let _ = writeln!(md, "|---|---|---|--:|--:|--:|--:|---|--:|");
    } else {
        let _ = writeln!(md, "\n| Request | Route | Status | Count | p50 | p99 | AWS calls (p50) | AWS calls per request |");
        let _ = writeln!(md, "|---|---|---|--:|--:|--:|--:|---|");
    }
    for (case, samples) in group(&w.samples, |s| s.label.case.clone()) {
        let calls: Vec<Vec<String>> = samples
            .iter()
            .map(|s| s.operations().map(String::from).collect())
            .collect();
        let mut row = format!(
            "| {case} | `{}` | {} | {} | {} | {} | {} | {} |",
            samples[0].label.route,
            statuses(&samples),
            samples.len(),
            ms(latency(&samples, 50.0)),
            ms(latency(&samples, 99.0)),
            ms(aws_time(&samples, 50.0)),
            call_counts(&calls),
        );
        if per_item {
            row.push_str(&format!(" {} |", calls_per_item(&samples)));
        }
        let _ = writeln!(md, "{row}");
    }
    budgets_section(md, w);
    overlap_section(md, w);
}

/// The exact call counts the scenario required, with what the run measured.
fn budgets_section(md: &mut String, w: &WarmRun) {
    if w.budgets.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\nRequired on every request of these kinds (the run fails on any request that \
         makes another number of calls):\n"
    );
    let _ = writeln!(
        md,
        "| Request | Requirement | Requests | Calls per request, measured | Held |"
    );
    let _ = writeln!(md, "|---|---|--:|---|---|");
    for b in &w.budgets {
        let samples: Vec<&Sample> = w
            .samples
            .iter()
            .filter(|s| s.label.case == b.case)
            .collect();
        let counts: Vec<usize> = samples
            .iter()
            .map(|s| s.operations().filter(|c| c.starts_with(b.service)).count())
            .collect();
        let (min, max) = (
            counts.iter().copied().min().unwrap_or(0),
            counts.iter().copied().max().unwrap_or(0),
        );
        let ops: Vec<Vec<String>> = samples
            .iter()
            .map(|s| {
                s.operations()
                    .filter(|c| c.starts_with(b.service))
                    .map(String::from)
                    .collect()
            })
            .collect();
        let measured = if min == max {
            format!("exactly {min} ({})", call_counts(&ops))
        } else {
            format!("{min}–{max} ({})", call_counts(&ops))
        };
        let held = !samples.is_empty() && min == b.calls && max == b.calls;
        let _ = writeln!(
            md,
            "| {} | {}: exactly {} `{}` call{} | {} | {measured} | {} |",
            b.case,
            b.why,
            b.calls,
            b.service.trim_end_matches('.'),
            if b.calls == 1 { "" } else { "s" },
            samples.len(),
            if held { "**yes**" } else { "**no**" },
        );
    }
}

/// For kinds of request whose AWS calls overlapped: how many calls, their summed time,
/// the request's wall time and the most calls in flight at once.
fn overlap_section(md: &mut String, w: &WarmRun) {
    let groups: Vec<(String, Vec<Sample>)> = group(&w.samples, |s| s.label.case.clone())
        .into_iter()
        .filter(|(_, samples)| samples.iter().any(|s| s.max_in_flight() > 1))
        .collect();
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\nRequests whose AWS calls overlapped (each call timed by the proxy from receiving \
         it to having moto's whole answer). Summed time adds up the calls' own durations; \
         when it exceeds the wall time, calls ran at the same time. moto answers DynamoDB \
         requests one at a time (`infra/local/src/moto_server.py`), so a call that was sent \
         alongside others also waits for them there: in-flight counts show the function \
         sending concurrently, and DynamoDB itself would answer the overlapping calls in \
         parallel.\n"
    );
    let _ = writeln!(
        md,
        "| Request | Count | `dynamodb.Query` calls | Their summed time p50 | All AWS calls | Their summed time p50 | Wall time p50 | Summed ÷ wall p50 | Most calls in flight, p50 (max) |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (case, samples) in groups {
        let query_sums: Vec<Duration> = samples
            .iter()
            .map(|s| op_time(s, "dynamodb.Query"))
            .collect();
        let queries: Vec<usize> = samples
            .iter()
            .map(|s| s.operations().filter(|c| *c == "dynamodb.Query").count())
            .collect();
        let all: Vec<usize> = samples.iter().map(|s| s.calls.len()).collect();
        let ratios: Vec<Duration> = samples
            .iter()
            .map(|s| {
                // As a duration in milliseconds-per-millisecond ×1000, to reuse percentile.
                let wall = s.latency.as_secs_f64().max(1e-9);
                Duration::from_secs_f64(s.aws_time().as_secs_f64() / wall)
            })
            .collect();
        let in_flight: Vec<Duration> = samples
            .iter()
            .map(|s| Duration::from_secs(s.max_in_flight() as u64))
            .collect();
        let max_in_flight = samples.iter().map(Sample::max_in_flight).max().unwrap_or(0);
        let _ = writeln!(
            md,
            "| {case} | {} | {} | {} | {} | {} | {} | {:.1}× | {} ({max_in_flight}) |",
            samples.len(),
            range(&queries),
            ms(percentile(&query_sums, 50.0)),
            range(&all),
            ms(aws_time(&samples, 50.0)),
            ms(latency(&samples, 50.0)),
            percentile(&ratios, 50.0).as_secs_f64(),
            percentile(&in_flight, 50.0).as_secs(),
        );
    }
}

/// Summed time of the calls of one operation in a request.
fn op_time(s: &Sample, operation: &str) -> Duration {
    s.calls
        .iter()
        .filter(|c| c.operation == operation)
        .map(|c| c.elapsed)
        .sum()
}

/// `13`, or `12–13` when requests differ.
fn range(values: &[usize]) -> String {
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    if min == max {
        min.to_string()
    } else {
        format!("{min}–{max}")
    }
}

/// Jobs per second of a queue worker with different settings, from runs beside the warm
/// run (see [`crate::scenario::ThroughputPlan`]).
fn throughput_section(md: &mut String, run: &Run) {
    let with: Vec<&FunctionResult> = run
        .results
        .iter()
        .filter(|r| !r.throughput.is_empty())
        .collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Verification throughput\n");
    for r in with {
        let batch = r.throughput[0].items;
        let batches = r.throughput[0].run.samples.len();
        let _ = writeln!(
            md,
            "`{}` on a fresh process per setting, sent {} SQS events of {batch} jobs one after \
             another ({} jobs; one more event first, to warm the process up, is left out). \
             Every job is a real one: a citizen's PATCH of SNILS, passport and INN saved by the \
             profile service queued three, received from the verification queue in moto; one \
             submission in four has a document the sandbox rejects. Each registry check waits \
             `REGISTRY_SANDBOX_DELAY_MS` first, as the template sets it; the settings below \
             are written on top of the template. Jobs per second are the jobs over the summed \
             batch times: one function instance working through a backlog, preparation \
             between batches left out.\n",
            r.spec.binary,
            batches,
            batches * batch,
        );
        let _ = writeln!(
            md,
            "| Setting | Batches | Jobs | Per batch p50 | p90 | max | Summed | Jobs/s | Per job |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        let mut rates = Vec::new();
        for t in &r.throughput {
            let samples = &t.run.samples;
            let times: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
            let total: Duration = times.iter().sum();
            let jobs = samples.len() * t.items;
            let rate = jobs as f64 / total.as_secs_f64().max(1e-9);
            rates.push((t.label.clone(), rate));
            let _ = writeln!(
                md,
                "| {} | {} | {jobs} | {} | {:.2} s | {rate:.1} | {} |",
                settings(&t.overrides),
                samples.len(),
                ms_cells(&times, &[50.0, 90.0, 100.0]),
                total.as_secs_f64(),
                ms(total / u32::try_from(jobs.max(1)).unwrap_or(u32::MAX)),
            );
        }
        if let [(a, fast), (b, slow)] = rates.as_slice() {
            let _ = writeln!(
                md,
                "\nWith `{a}` the worker gets through {:.1} times as many jobs per second as \
                 with `{b}`: a batch waits for the registry about once instead of once per job.",
                fast / slow.max(1e-9)
            );
        }
        let in_flight: Vec<String> = r
            .throughput
            .iter()
            .map(|t| {
                let most = t
                    .run
                    .samples
                    .iter()
                    .map(Sample::max_in_flight)
                    .max()
                    .unwrap_or(0);
                format!("{most} with `{}`", t.label)
            })
            .collect();
        let _ = writeln!(
            md,
            "Most AWS calls in flight at once during a batch: {}.",
            in_flight.join(", ")
        );
    }
}

fn method(md: &mut String, run: &Run) {
    let _ = writeln!(md, "\n## Method\n");
    let notes = [
        "**Build.** `cargo lambda build --release` with the workspace's release profile \
         (`opt-level = \"s\"`, thin LTO, one codegen unit, stripped, `panic = \"abort\"`), \
         for the machine's own architecture so the binaries can run here. The template deploys \
         arm64; an arm64 build differs somewhat in size and speed."
            .to_string(),
        "**Zip.** `target/lambda/<binary>/bootstrap` as the only entry, mode 0755, deflated \
         by zlib at its default level 6: what `sam build`/`sam deploy` upload for a \
         `provided.al2023` function (SAM zips with Python's `zipfile`, which uses the same \
         zlib and level, so the size matches to the byte)."
            .to_string(),
        format!(
            "**Cold start.** Each start is a new process with a fresh Runtime API stand-in served \
             by the harness. Its init is timed from just before spawning the release binary (fork \
             and exec included) to the arrival of its first `GET /2018-06-01/runtime/invocation/next`: \
             process start, runtime, configuration and SDK clients. The process is then sent one \
             event, prepared before it started: the scenario's next request (the first of a cycle, \
             on emptied tables, for scenarios that run in cycles), whose answer must be the one the \
             scenario expects; its first response is timed as a warm invocation is. The cold start \
             reported is their sum, so work a function defers from its init to its first request \
             (an SDK client or a secret read on first use) is still counted, and the init is shown \
             beside it. {} starts are counted; one more before them warms the page cache and is \
             dropped. Lambda's own sandbox start and code download are not part of it. The floor \
             (`uslugi-bench-floor`, built with the harness from `bench/src/bin/floor.rs`) is a \
             process that only asks the stand-in for its event and answers `{{}}` with the \
             standard library (no async runtime, no AWS SDK, no configuration), started and timed \
             the same way: what any function costs at least on this machine. The environment is what Lambda sets for a \
             `provided.al2023` function (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, \
             `_MEMORY_SIZE` from the template, `_VERSION`, region, credentials, JSON log \
             settings) plus the template's `Globals` and function variables, resolved for a \
             local stack: `Stage` is `bench`, names and ARNs are derived as CloudFormation \
             would, and `{{{{resolve:...}}}}` references become random secrets of the declared \
             length. Nothing else from the harness's environment is passed on.",
            run.cold_starts
        ),
        format!(
            "**Memory.** `VmRSS` and `VmHWM` (peak resident set) from `/proc/<pid>/status` of the \
             process that served the warm run, read after its init and after {} invocations. \
             Lambda bills and limits memory by the configured size, not by RSS; this is the \
             headroom left in it.",
            grouped(run.invocations as u64)
        ),
        "**Warm latency.** One process serves the whole run, one invocation at a time, through \
         the stand-in: the clock starts when the stand-in hands out the event and stops when the \
         function's `POST .../response` arrives. Percentiles are nearest-rank; p99 of a group \
         with fewer than 100 requests is its maximum. The time includes the AWS calls, which go \
         over loopback to moto (Python), on the same two cores as the function: \"of which AWS \
         calls\" is the summed time of the invocation's calls as the proxy saw them, and the \
         rest is the function's own work. Against real DynamoDB, SNS and SES the calls cost a \
         few milliseconds each over the network instead, so compare these figures between runs, \
         not with production."
            .to_string(),
        "**AWS calls.** `AWS_ENDPOINT_URL` points every SDK client at a counting proxy in the \
         harness, which forwards each request to moto unchanged and files it under the \
         invocation in flight. The operation comes from `X-Amz-Target` (DynamoDB), the \
         `Action` parameter (SNS, query protocol) or the method and path (SES v2, REST); the \
         service from the signature's credential scope. Retries by the SDK would show as extra \
         calls. The codes the scenario verifies are read from the SMS and e-mails passing \
         through the proxy, and a letter's code from the message queued for the post \
         (`sqs.SendMessage`), never logged."
            .to_string(),
        "**Calls in flight.** The proxy also notes when each call arrived; a call is in \
         flight from then until the proxy has moto's whole answer. The most calls in flight \
         at one moment of an invocation, and the calls' summed time against the \
         invocation's wall time, show whether a function sends its calls concurrently. \
         moto serialises DynamoDB requests, so overlapping calls also queue there: the wall \
         time of a concurrent request is about the sum of moto's answer times, which \
         DynamoDB would overlap."
            .to_string(),
        "**Resources.** Each run starts its own `moto_server` on a free loopback port (with \
         the local stack's adjustments: DynamoDB requests one at a time, transactions rolled \
         back from the items they name) and creates what the template declares, as the local \
         stack (`make dev`) does: DynamoDB tables with their key schema, indexes and TTL, SQS \
         queues, SES e-mail identities. A scenario has the tables dropped and recreated \
         between its cycles, while the function waits for its next event and outside the \
         timing, so that every cycle starts from the same data (no send log or session list \
         grows over the run) and moto's tables stay small: moto answers an index query \
         (the sessions of an account) by walking every item of the table, where DynamoDB's \
         cost does not grow with the table. Per-request samples and the functions' logs of the \
         last run are in `bench/out/` (not committed)."
            .to_string(),
        "**Fixtures.** What a request needs before it is sent — verification tokens for a \
         registration, accounts to sign in to or recover, older sessions, a session whose \
         idle deadline is due — the harness makes with the shared crate's own services and \
         DynamoDB store (what the codes, accounts and sessions functions run), configured \
         from the measured function's resolved environment and talking to moto directly: \
         not through the counting proxy and between invocations, so it is neither timed nor \
         counted. Accounts the sessions and recovery scenarios use are dated two hours back, \
         so that their registration codes lie outside the rate windows the functions check. \
         Private routes get the event API Gateway passes on once the session authorizer let \
         the request through (`requestContext.authorizer.lambda` with the account and session \
         ids, as the local gateway builds it); the authorizer itself gets the REQUEST event \
         the local gateway's code builds. The same holds past sign-up: verified documents \
         (a PATCH saved by the profile service and its checks run by the verification \
         service with the sandbox registries), children, vehicles, operators, billers and \
         charges are made by the profile, household, verification, operator and charge \
         services; operators' and billers' routes get the context the authorizer answers for \
         their keys. The verification worker gets SQS events built by the local stack's \
         `sqs_event` from messages received from the verification queue in moto, where the \
         profile service's SQS adapter put them. Payments' card tokens come from the sandbox \
         acquirer's card page (`SandboxAcquirer::tokenize`), autopays' saved card from the \
         payment service; a route that needs a recent step-up gets `proven_at` in the \
         authorizer's context. The notice workers get SQS events built with `sqs_event` from \
         records the harness makes (the services' message types, with the receive count each \
         should carry), not received from moto."
            .to_string(),
        "**AWS calls per item.** For an SQS batch (its messages) or a batch request (its \
         charges), the report divides all AWS calls of the kind of request by all its items: \
         what one more message or charge costs in calls, whatever the order and batching of \
         the calls. The scenarios check answers, not call sequences (except the exact counts \
         listed under a function)."
            .to_string(),
    ];
    for n in notes {
        let _ = writeln!(md, "- {n}");
    }
}

/// Samples grouped by a key, groups in order of first appearance.
fn group(samples: &[Sample], key: impl Fn(&Sample) -> String) -> Vec<(String, Vec<Sample>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        let k = key(s);
        if !groups.contains_key(&k) {
            order.push(k.clone());
        }
        groups.entry(k).or_default().push(s.clone());
    }
    order
        .into_iter()
        .map(|k| {
            let g = groups.remove(&k).unwrap_or_default();
            (k, g)
        })
        .collect()
}

fn latency(samples: &[Sample], p: f64) -> Duration {
    let v: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    percentile(&v, p)
}

fn aws_time(samples: &[Sample], p: f64) -> Duration {
    let v: Vec<Duration> = samples.iter().map(Sample::aws_time).collect();
    percentile(&v, p)
}

/// `202` or `202 ×299, 503 ×1`.
fn statuses(samples: &[Sample]) -> String {
    let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
    for s in samples {
        *counts.entry(s.status).or_default() += 1;
    }
    if counts.len() == 1 {
        return counts.keys().next().map(u16::to_string).unwrap_or_default();
    }
    crate::stats::comma_list(counts.iter().map(|(status, n)| format!("{status} ×{n}")))
}

/// Calls per request over a group: `dynamodb.GetItem 1, sns.Publish 1`, with the mean and
/// range where requests of the group differ: `dynamodb.GetItem 1.5 (1–2)`.
pub fn call_counts(requests: &[Vec<String>]) -> String {
    let mut order: Vec<&str> = Vec::new();
    for calls in requests {
        for op in calls {
            if !order.contains(&op.as_str()) {
                order.push(op);
            }
        }
    }
    if order.is_empty() {
        return "none".into();
    }
    crate::stats::comma_list(order.iter().map(|op| {
        let per: Vec<usize> = requests
            .iter()
            .map(|calls| calls.iter().filter(|c| c == op).count())
            .collect();
        let min = per.iter().copied().min().unwrap_or(0);
        let max = per.iter().copied().max().unwrap_or(0);
        if min == max {
            format!("{op} {min}")
        } else {
            let mean = per.iter().sum::<usize>() as f64 / per.len() as f64;
            format!("{op} {mean:.2} ({min}–{max})")
        }
    }))
}

/// `` `NAME=value`, `OTHER=value` ``: variables set for the bench.
fn settings(variables: &[(String, String)]) -> String {
    crate::stats::comma_list(variables.iter().map(|(k, v)| format!("`{k}={v}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Call;
    use crate::scenario::Label;
    use std::time::Instant;

    fn v(ops: &[&str]) -> Vec<String> {
        ops.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn counts_calls_per_request() {
        let same = [v(&["d.Get", "s.Publish"]), v(&["d.Get", "s.Publish"])];
        assert_eq!(call_counts(&same), "d.Get 1, s.Publish 1");
        let differ = [v(&["d.Get"]), v(&["d.Get", "d.Get", "d.Update"])];
        assert_eq!(
            call_counts(&differ),
            "d.Get 1.50 (1–2), d.Update 0.50 (0–1)"
        );
        assert_eq!(call_counts(&[v(&[])]), "none");
    }

    fn sample(calls: usize, items: Option<usize>) -> Sample {
        Sample {
            label: Label {
                case: "batch".into(),
                route: "SQS".into(),
                argon2: 0,
                items,
            },
            status: 200,
            latency: Duration::from_millis(5),
            calls: vec![
                Call {
                    operation: "dynamodb.GetItem".into(),
                    status: 200,
                    started: Instant::now(),
                    elapsed: Duration::ZERO,
                    message: None,
                };
                calls
            ],
        }
    }

    #[test]
    fn calls_per_item_are_all_calls_over_all_items() {
        // 10 calls for 10 messages and 4 for 1: 14 calls, 11 messages.
        let samples = [sample(10, Some(10)), sample(4, Some(1))];
        assert_eq!(calls_per_item(&samples), "1.3");
        assert_eq!(calls_per_item(&[sample(3, None)]), "—");
    }

    fn start(init_ms: u64, first_ms: Option<u64>) -> ColdStart {
        ColdStart {
            init: Duration::from_millis(init_ms),
            first: first_ms.map(|ms| crate::measure::FirstResponse {
                case: "first".into(),
                latency: Duration::from_millis(ms),
                calls: 1,
            }),
        }
    }

    #[test]
    fn a_cold_start_is_init_plus_first_response() {
        let cold = [start(8, Some(3)), start(10, Some(30)), start(9, Some(4))];
        assert_eq!(
            totals(&cold),
            [11, 40, 13].map(Duration::from_millis).to_vec()
        );
        // A first request that got slower shows even though the init did not change.
        assert_eq!(percentile(&totals(&cold), 50.0), Duration::from_millis(13));
        assert_eq!(inits(&cold).len(), 3);
        // Without an event there is no cold start to report, only the init.
        assert!(totals(&[start(8, None)]).is_empty());
    }
}
