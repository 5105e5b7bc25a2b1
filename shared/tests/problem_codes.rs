//! Every problem code the service can answer is in the API description's list of codes
//! (`Problem.code`'s `enum` in docs/openapi.yaml). Every end-to-end response is checked
//! against that list, but only the answers a scenario happens to meet: this checks them
//! all, from the one place they are written (`src/error.rs`).

use std::collections::BTreeSet;

/// The codes `src/error.rs` writes: the literal of each `Problem::new(status, "code", …)`,
/// the arms of the functions that name a code by what it is about, and the two codes of
/// a finished charge.
fn codes_in_source() -> BTreeSet<String> {
    let source = include_str!("../src/error.rs");
    let mut codes: BTreeSet<String> = source
        .split("Problem::new(")
        .skip(1)
        .filter_map(|rest| {
            let (status, rest) = rest.split_once(", \"")?;
            status.chars().all(|c| c.is_ascii_digit()).then_some(())?;
            rest.split_once('"').map(|(code, _)| code.to_string())
        })
        .collect();
    for function in [
        "fn not_found_code",
        "fn already_exists_code",
        "fn too_many_code",
    ] {
        let body = source
            .split(function)
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .unwrap_or_default();
        for arm in body.lines().filter_map(|l| l.split_once("=> ")) {
            // The fallbacks of a `what` nobody names (every caller names one listed)
            // are not answers anyone can get; `too_many` is, for saved methods and the like.
            let code = arm.1.trim().trim_end_matches(',').trim_matches('"');
            if !matches!(code, "not_found" | "already_exists") {
                codes.insert(code.to_string());
            }
        }
    }
    assert!(source.contains(r#"{ "charge_paid" } else { "charge_cancelled" }"#));
    codes.extend(["charge_paid".to_string(), "charge_cancelled".to_string()]);
    codes
}

/// The `enum` of `components.schemas.Problem.properties.code`.
fn codes_in_description() -> BTreeSet<String> {
    let spec = include_str!("../../docs/openapi.yaml");
    let list = spec
        .split("\n    Problem:\n")
        .nth(1)
        .and_then(|problem| problem.split("enum:\n").nth(1))
        .unwrap_or_default();
    list.lines()
        .map_while(|line| line.strip_prefix("            - "))
        .map(|code| code.trim().to_string())
        .collect()
}

#[test]
fn every_problem_code_is_in_the_api_description() {
    let source = codes_in_source();
    assert!(source.len() > 50, "codes read from the source: {source:?}");
    assert!(source.contains("validation_failed") && source.contains("payment_not_found"));
    let described = codes_in_description();
    let missing: Vec<_> = source.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "codes not in docs/openapi.yaml: {missing:?}"
    );
}
