//! bench/chaos-results.md: the plan, the faults the functions injected, the answers by
//! status, and each invariant with its numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::api::{Phase, Tally};
use super::invariants::Invariant;
use super::traffic::{Outcome, Shape};
use super::FaultCounts;
use crate::stack::RunSummary;

pub struct Run<'a> {
    /// The machine, the instances, the setup's and the whole run's time.
    pub summary: RunSummary,
    pub shape: &'a Shape,
    pub plan: &'a str,
    pub plan_source: &'a str,
    pub faulty: Duration,
    pub recovery: Duration,
    pub outcome: &'a Outcome,
    pub outages: &'a [&'static str],
    pub outage_every: Duration,
    pub faults: &'a FaultCounts,
    pub tally: &'a Tally,
    /// Pages each reconciliation run planned onto the reconcile queue.
    pub reconciliations: &'a [u64],
    /// Messages left in each dead-letter queue.
    pub parked: &'a BTreeMap<&'static str, usize>,
    pub invariants: &'a [Invariant],
}

pub fn render(run: &Run) -> String {
    let mut out = String::new();
    let held = run.invariants.iter().all(|i| i.held);
    let m = &run.summary.machine;
    let _ = writeln!(out, "# Chaos run\n");
    let _ = writeln!(
        out,
        "Written by `bash bench/run.sh chaos` (see bench/README.md). {}\n",
        if held {
            "**Every invariant held.**"
        } else {
            "**An invariant did not hold** (see below)."
        }
    );
    let _ = writeln!(
        out,
        "{}; {} ({} cores), {}; {}; {}. Debug builds under cargo lambda watch, {} instances per function.\n",
        m.date, m.cpu_model, m.nproc, m.memory, m.rustc, m.moto, run.summary.lambda_concurrency
    );
    let s = run.shape;
    let o = run.outcome;
    let _ = writeln!(out, "## Traffic\n");
    let _ = writeln!(
        out,
        "Before the faults (setup, {:.0} s): 2 billers, {} payers, {} holders registered through the API and verified.\n",
        run.summary.setup.as_secs_f64(),
        s.clients,
        s.holders
    );
    let _ = writeln!(
        out,
        "During the faults ({:.0} s):\n",
        run.faulty.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "- {} charges pushed in {} batches ({} batches sent again): {} bills to pay and {} new bills for the holders;",
        o.charges_written,
        o.batches,
        o.batch_resends,
        s.bills,
        o.notices_due.len()
    );
    let _ = writeln!(
        out,
        "- {} registrations through the code flow ({} completed with a profile edit, {} abandoned after {} attempts of a step); one registrant in four has a passport the registry refuses;",
        s.registrations,
        o.profile_edits,
        o.registrations_abandoned,
        super::traffic::ATTEMPTS
    );
    let _ = writeln!(
        out,
        "- {} payments by {} clients in {} requests (sent again with the same key after a 503, no answer or `payment_in_progress`); their last answers: {}.\n",
        o.payments_sent,
        s.clients,
        o.payment_requests,
        crate::stats::comma_list(o.payment_answers.iter().map(|(k, n)| format!("{n} × `{k}`")))
    );
    let _ = writeln!(
        out,
        "After the faults ({:.0} s): the work queues drained, reconciliation ran {} time(s), each drained before the next ({} pages planned). Whole run: {:.0} s.\n",
        run.recovery.as_secs_f64(),
        run.reconciliations.len(),
        run.reconciliations
            .iter()
            .map(|pages| pages.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        run.summary.elapsed.as_secs_f64()
    );

    let _ = writeln!(out, "## The plan\n");
    let _ = writeln!(
        out,
        "From {}, in force during the faulty phase only:\n",
        run.plan_source
    );
    let _ = writeln!(out, "```\n{}\n```\n", run.plan.trim_end());

    if run.outages.is_empty() {
        let _ = writeln!(out, "No outages.\n");
    } else {
        let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
        for o in run.outages {
            *counted.entry(o).or_default() += 1;
        }
        let _ = writeln!(
            out,
            "Outages on top of it: every {} s, one rule put first for {} s, in turn ({} in all): {}.\n",
            run.outage_every.as_secs(),
            super::OUTAGE.as_secs(),
            run.outages.len(),
            crate::stats::comma_list(counted.iter().map(|(rule, n)| format!("`{rule}` × {n}")))
        );
    }

    let _ = writeln!(out, "## Faults injected\n");
    let _ = writeln!(out, "Counted from the functions' `fault injected` lines.\n");
    let _ = writeln!(out, "| dependency | fault | count |\n| --- | --- | ---: |");
    for ((dependency, fault), n) in run.faults {
        let _ = writeln!(out, "| {dependency} | {fault} | {n} |");
    }
    let _ = writeln!(
        out,
        "| **all** | | {} |\n",
        run.faults.values().sum::<usize>()
    );

    let _ = writeln!(out, "## Answers by status\n");
    let _ = writeln!(
        out,
        "| phase | status | problem code | answers |\n| --- | --- | --- | ---: |"
    );
    for ((phase, status, code), n) in &run.tally.by_status {
        let status = if *status == 0 {
            "no answer".to_string()
        } else {
            status.to_string()
        };
        let code = if code.is_empty() {
            String::new()
        } else {
            format!("`{code}`")
        };
        let _ = writeln!(out, "| {} | {status} | {code} | {n} |", phase.name());
    }
    if !run.tally.unavailable.is_empty() {
        let _ = writeln!(
            out,
            "\n503s by route: {}.",
            crate::stats::comma_list(
                run.tally
                    .unavailable
                    .iter()
                    .map(|(route, n)| format!("`{route}` {n}"))
            )
        );
    }
    let _ = writeln!(
        out,
        "\nEvery 503 carried `Retry-After` unless listed under the last invariant. Requests in the faulty phase: {}.\n",
        run.tally.total(Phase::Faulty)
    );

    let _ = writeln!(out, "## Dead-letter queues\n");
    for (queue, n) in run.parked {
        let _ = writeln!(out, "- {queue}: {n}");
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## Invariants\n");
    let _ = writeln!(
        out,
        "| # | invariant | held | numbers |\n| --- | --- | --- | --- |"
    );
    for (n, i) in run.invariants.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            n + 1,
            i.name,
            if i.held { "yes" } else { "**no**" },
            i.numbers
        );
    }
    for i in run.invariants.iter().filter(|i| !i.held) {
        let _ = writeln!(out, "\n{}:\n", i.name);
        for d in &i.details {
            let _ = writeln!(out, "- {d}");
        }
    }
    out
}
