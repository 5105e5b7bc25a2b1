//! bench/load-results.md: what the load test sent, what came back, how fast, and the
//! checks of the books.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::checks::{AnswerCheck, Check, KeyLog, Kind, Ledger};
use super::plan::{Plan, Retry, Shape};
use crate::stack::RunSummary;
use crate::stats::{ms, ms_cells, percentile};

pub struct Run<'a> {
    /// The machine, the instances, the setup's and the whole run's time.
    pub summary: RunSummary,
    pub shape: &'a Shape,
    pub plan: &'a Plan,
    pub stack_ready: Duration,
    pub batches: usize,
    pub batch_times: &'a [Duration],
    pub paying: Duration,
    pub logs: &'a [KeyLog],
    pub answers: &'a AnswerCheck,
    pub ledger: &'a Ledger,
    /// (checked, settled) of each reconciliation run.
    pub reconciliations: &'a [(u64, u64)],
    pub checks: &'a [Check],
}

fn latency_row(out: &mut String, what: &str, samples: &[Duration]) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "| {what} | {} | {} |",
        samples.len(),
        ms_cells(samples, &[50.0, 90.0, 99.0, 100.0]),
    );
}

fn per_second(count: usize, over: Duration) -> String {
    let secs = over.as_secs_f64();
    if secs > 0.0 {
        format!("{:.1}", count as f64 / secs)
    } else {
        "–".into()
    }
}

pub fn render(run: &Run) -> String {
    let mut out = String::new();
    let m = &run.summary.machine;
    let a = run.answers;
    let passed = run.checks.iter().all(|c| c.passed);
    let _ = writeln!(out, "# Payments load test\n");
    let _ = writeln!(
        out,
        "Written by `uslugi-bench load` (`make bench`, before `results.md`); see \
         [README.md](README.md#payments-load-test). {} Timings are one run on one \
         machine, of debug builds under `cargo lambda watch` against moto: compare them \
         with runs on the same machine, not with AWS. Only the checks fail a run.\n",
        if passed {
            "**Every check passed.**"
        } else {
            "**A check failed.**"
        }
    );
    let _ = writeln!(
        out,
        "- Machine: {}, {} cores, {} memory; {}\n- Tools: {}; {}; moto {}\n- Run: {} · \
         seed {} · whole run {:.0} s (stack start with builds {:.0} s, setup {:.0} s, \
         paying {:.1} s)\n",
        m.cpu_model,
        m.nproc,
        m.memory,
        m.kernel,
        m.rustc,
        m.cargo_lambda,
        m.moto,
        m.date,
        run.shape.seed,
        run.summary.elapsed.as_secs_f64(),
        run.stack_ready.as_secs_f64(),
        run.summary.setup.as_secs_f64(),
        run.paying.as_secs_f64(),
    );

    let _ = writeln!(out, "## Checks\n");
    let _ = writeln!(out, "| Check | | Detail |\n|---|---|---|");
    for c in run.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            c.name,
            if c.passed { "pass" } else { "**FAIL**" },
            c.detail.replace('|', "\\|")
        );
    }

    let plan = run.plan;
    let all: Vec<_> = plan.clients.iter().flatten().collect();
    let multi = all.iter().filter(|p| p.bills.len() > 1).count();
    let multi_bills: usize = all
        .iter()
        .filter(|p| p.bills.len() > 1)
        .map(|p| p.bills.len())
        .sum();
    let retry_count = |f: &dyn Fn(Retry) -> bool| all.iter().filter(|p| f(p.retry)).count();
    let _ = writeln!(out, "\n## What ran\n");
    let _ = writeln!(
        out,
        "- Stack: moto, every function of the template under `cargo lambda watch \
         --concurrency {}` (debug builds), the local gateway with its session authorizer.",
        run.summary.lambda_concurrency
    );
    let batch_p50 = percentile(run.batch_times, 50.0);
    let _ = writeln!(
        out,
        "- Bills: {} charges of {} billers, pushed in {} `POST /v1/biller/charges:batch` \
         requests of up to {} (p50 {} a batch); 100 to 20,000 roubles each.",
        plan.bills.len(),
        run.shape.billers,
        run.batches,
        run.shape.batch,
        ms(batch_p50)
    );
    let _ = writeln!(
        out,
        "- Clients: {} citizens with sessions, all paying at once, each its own share of \
         the bills one payment after another; {} of them pay every other payment with a \
         card saved through `POST /v1/payment-methods`, the rest with one-time tokens of \
         test card 4242 4242 4242 4242.",
        run.shape.clients,
        plan.saves_card.iter().filter(|s| **s).count()
    );
    let _ = writeln!(
        out,
        "- Payments planned: {} — {} of one bill, {} of 2 to 5 bills ({} bills).",
        all.len(),
        all.len() - multi,
        multi,
        multi_bills
    );
    let _ = writeln!(
        out,
        "- Sent again with the same key and body: {} payments with a duplicate sent while \
         the first was in flight ({} of them three times), {} once more after the answer, \
         {} both; {} sent once. A request without a final answer (none, a 5xx, \
         `payment_in_progress`) is sent again a second later, up to three times.",
        retry_count(&|r| matches!(r, Retry::Concurrent(_))),
        retry_count(&|r| r == Retry::Concurrent(3)),
        retry_count(&|r| r == Retry::After),
        retry_count(&|r| r == Retry::ConcurrentThenAfter),
        retry_count(&|r| r == Retry::Once),
    );
    let _ = writeln!(
        out,
        "- Races: {} single-bill payments met, at the same moment, another client's \
         request for the same bill with a key of its own; one of the two must lose (409 \
         `bill_in_payment` or `bill_paid`, or 404 `bill_not_found` to a citizen the bill \
         is not addressed to, who may not learn that it is being paid).",
        plan.races()
    );

    let _ = writeln!(out, "\n## Results\n");
    let refused_tokens = run
        .logs
        .iter()
        .filter(|l| {
            l.sent.iter().any(|s| {
                s.code.as_deref() == Some("card_number_not_accepted")
                    && s.field.as_deref() == Some("/method/token")
            })
        })
        .count();
    let paid_payments = a.succeeded_ids.len();
    let paid_bills: usize = run
        .ledger
        .payments
        .iter()
        .filter(|p| p.status == "succeeded")
        .map(|p| p.uins.len())
        .sum();
    let _ = writeln!(
        out,
        "| | |\n|---|---|\n| `POST /v1/payments` requests | {} |\n| payments succeeded \
         (distinct ids answered 201) | {} |\n| bills paid | {} |\n| throughput | {} \
         payments/s, {} bills/s, {} requests/s over {:.1} s |\n| replays (`Idempotent-Replayed: \
         true`) | {} ({} naming the first answer's payment) |\n| answers of a lost race \
         (409 `bill_in_payment`, `bill_paid`; 404 `bill_not_found`) | {} |\n| 5xx | {} |\n| no answer | {} |\n| \
         reconciliation runs (checked, settled) | {} |\n| keys whose card token was \
         refused as a card number (422 `card_number_not_accepted` at `/method/token`) | {} \
         ({} paid again with a new token and key) |",
        a.requests,
        paid_payments,
        paid_bills,
        per_second(paid_payments, run.paying),
        per_second(paid_bills, run.paying),
        per_second(a.requests, run.paying),
        run.paying.as_secs_f64(),
        a.replays,
        a.replays_matching,
        a.lost_races,
        a.server_errors,
        a.unanswered,
        crate::stats::comma_list(run.reconciliations.iter().map(|(c, s)| format!("({c}, {s})"))),
        refused_tokens,
        run.logs
            .iter()
            .filter(|l| l.sent.first().is_some_and(|s| s.kind == Kind::NewToken))
            .count(),
    );

    let _ = writeln!(out, "\n### Answers\n");
    let _ = writeln!(out, "| Status | Problem code | Answers |\n|---|---|---|");
    let mut by_status_code: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for s in run.logs.iter().flat_map(|l| &l.sent) {
        let code = match (s.status, s.code.as_deref()) {
            (0, _) => "no answer".to_string(),
            (_, Some(c)) => format!("`{c}`"),
            (st, None) if (200..300).contains(&st) && s.replayed => "replay".into(),
            (_, None) => String::new(),
        };
        *by_status_code.entry((s.status, code)).or_default() += 1;
    }
    for ((status, code), n) in &by_status_code {
        let status = if *status == 0 {
            "–".to_string()
        } else {
            status.to_string()
        };
        let _ = writeln!(out, "| {status} | {code} | {n} |");
    }

    let _ = writeln!(out, "\n### Latency of `POST /v1/payments`\n");
    let _ = writeln!(
        out,
        "Client-side, through the local gateway (its authorizer call included).\n\n\
         | Requests | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|"
    );
    let answered: Vec<_> = run
        .logs
        .iter()
        .flat_map(|l| &l.sent)
        .filter(|s| s.status != 0)
        .collect();
    let all_times: Vec<Duration> = answered.iter().map(|s| s.elapsed).collect();
    latency_row(&mut out, "all answered", &all_times);
    let group = |f: &dyn Fn(&&&super::checks::Sent) -> bool| -> Vec<Duration> {
        answered.iter().filter(f).map(|s| s.elapsed).collect()
    };
    latency_row(
        &mut out,
        "that paid (201, not a replay)",
        &group(&|s| s.status == 201 && !s.replayed),
    );
    latency_row(&mut out, "replays", &group(&|s| s.replayed));
    latency_row(&mut out, "409", &group(&|s| s.status == 409));
    for kind in [
        Kind::First,
        Kind::Concurrent,
        Kind::After,
        Kind::Resend,
        Kind::Race,
        Kind::NewToken,
    ] {
        latency_row(&mut out, kind.name(), &group(&|s| s.kind == kind));
    }

    if !a.unexpected.is_empty() {
        let _ = writeln!(
            out,
            "\n### Keys refused other than by a lost race\n\nNot a failed check by \
             itself (the books say whether their bills were paid):\n"
        );
        for u in a.unexpected.iter().take(20) {
            let _ = writeln!(out, "- {u}");
        }
        if a.unexpected.len() > 20 {
            let _ = writeln!(out, "- … {} more", a.unexpected.len() - 20);
        }
    }
    let errors: Vec<String> = run
        .logs
        .iter()
        .flat_map(|l| &l.sent)
        .filter_map(|s| s.error.clone())
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\n### Requests without an answer\n");
        for e in errors.iter().take(10) {
            let _ = writeln!(out, "- {e}");
        }
    }
    out
}
