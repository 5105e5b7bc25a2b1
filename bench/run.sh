#!/usr/bin/env bash
# Builds the release Lambda binaries and runs the payments load test, which writes
# bench/load-results.md, then the benchmark harness, which writes bench/results.md (quoting
# the load test, the last chaos run and the last autopay run at scale).
# Arguments are passed to the harness (see `--help`), e.g.
#   bash bench/run.sh --only codes --invocations 200
# `bash bench/run.sh load [options]` runs only the load test (`load --help`).
# `bash bench/run.sh autopays [options]` runs only the daily autopay run at scale
# (`autopays --help`; 5,000 autopays by default), which writes bench/autopays-results.md.
# `bash bench/run.sh chaos [options]` runs only the chaos run (`chaos --help`), which
# writes bench/chaos-results.md and fails when an invariant does not hold.
# Not part of `make test`: the harness measures and asserts nothing about timings; the
# load test fails only when the books do not balance or an answer is a 5xx.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$bench_dir")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

if [[ -x "$repo/.venv/bin/cargo-lambda" ]]; then
    cargo_lambda=("$repo/.venv/bin/cargo-lambda" lambda)
elif command -v cargo-lambda >/dev/null 2>&1; then
    cargo_lambda=(cargo lambda)
else
    echo "bench/run.sh: cargo-lambda not found: install the dev tools into .venv (make venv)" >&2
    exit 1
fi
if [[ ! -x "$repo/.venv/bin/moto_server" ]]; then
    echo "bench/run.sh: .venv/bin/moto_server not found: install the dev tools into .venv (make venv)" >&2
    exit 1
fi

chaos_only=false
if [[ "${1:-}" == "chaos" ]]; then
    chaos_only=true
    shift
fi
load_only=false
autopays_only=false
if [[ "${1:-}" == "load" ]]; then
    load_only=true
    shift
elif [[ "${1:-}" == "autopays" ]]; then
    # Its stack builds the functions in debug (cargo lambda watch): no release builds.
    autopays_only=true
    load_only=true
    shift
fi

if [[ "$load_only" == false && "$chaos_only" == false ]]; then
    echo "bench/run.sh: building release Lambda binaries (cargo lambda build --release)" >&2
    (cd "$repo" && PATH="$repo/.venv/bin:$PATH" "${cargo_lambda[@]}" build --release)
fi

# The harness is a member of the tools workspace (with the local stack it builds on).
echo "bench/run.sh: building the harness" >&2
cargo build --release --quiet --manifest-path "$repo/infra/local/Cargo.toml" -p uslugi-bench
bench="$CARGO_TARGET_DIR/release/uslugi-bench"

if [[ "$autopays_only" == true ]]; then
    echo "bench/run.sh: the daily autopay run at scale (bench/autopays-results.md)" >&2
    exec env PATH="$repo/.venv/bin:$PATH" "$bench" autopays --repo "$repo" "$@"
fi
if [[ "$chaos_only" == true ]]; then
    # Like the load test, a local stack of its own (debug builds of the functions).
    echo "bench/run.sh: the chaos run (bench/chaos-results.md)" >&2
    exec env PATH="$repo/.venv/bin:$PATH" "$bench" chaos --repo "$repo" "$@"
fi

# The load test starts a local stack of its own, which builds the functions in debug
# (cargo lambda watch) in <repo>/target, as `make dev` and the end-to-end tests do. It runs
# before the harness so that bench/results.md quotes this run's load test.
echo "bench/run.sh: the payments load test (bench/load-results.md)" >&2
if [[ "$load_only" == true ]]; then
    exec env PATH="$repo/.venv/bin:$PATH" "$bench" load --repo "$repo" "$@"
fi
env PATH="$repo/.venv/bin:$PATH" "$bench" load --repo "$repo"
echo "bench/run.sh: the functions one by one (bench/results.md)" >&2
exec "$bench" --repo "$repo" --target-dir "$CARGO_TARGET_DIR" "$@"
