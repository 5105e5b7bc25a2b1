#!/usr/bin/env bash
# Builds the release Lambda binaries and runs the benchmark harness, which writes
# bench/results.md. Arguments are passed to the harness (see `--help`), e.g.
#   bash bench/run.sh --only codes --invocations 200
# Not part of `make test`: it measures, it does not assert.
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

echo "bench/run.sh: building release Lambda binaries (cargo lambda build --release)" >&2
(cd "$repo" && PATH="$repo/.venv/bin:$PATH" "${cargo_lambda[@]}" build --release)

# The harness is a member of the tools workspace (with the local stack it builds on).
echo "bench/run.sh: building the harness" >&2
cargo build --release --quiet --manifest-path "$repo/infra/local/Cargo.toml" -p uslugi-bench

exec "$CARGO_TARGET_DIR/release/uslugi-bench" --repo "$repo" --target-dir "$CARGO_TARGET_DIR" "$@"
