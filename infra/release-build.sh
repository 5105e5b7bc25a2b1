#!/usr/bin/env bash
# The release build CloudFormation would receive: `sam build --config-env prod`
# (arm64, every function through cargo-lambda), timed, then each function's
# deployment package measured as Lambda gets it (the zip of its bootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."

# A cold build leaves about 1 GB behind (arm64 release artifacts, host build scripts,
# target/lambda and .aws-sam copies of each bootstrap): refuse at once rather than fail
# after minutes with a full disk.
target="${CARGO_TARGET_DIR:-target}"
free_mb=$(df -Pm "$target" . | awk 'NR > 1 { print $4 }' | sort -n | head -1)
if [ "$free_mb" -lt 1500 ]; then
    echo "release-build: ${free_mb} MB free where $target and .aws-sam live; needs about 1500" >&2
    exit 1
fi

start=$(date +%s)
SAM_CLI_TELEMETRY=0 sam build --config-env prod
seconds=$(($(date +%s) - start))

python3 - "$seconds" <<'PY'
import io, os, sys, zipfile

build = ".aws-sam/build"
rows = []
for name in sorted(os.listdir(build)):
    bootstrap = os.path.join(build, name, "bootstrap")
    if not os.path.isfile(bootstrap):
        continue
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(bootstrap, "bootstrap")
    rows.append((name, os.path.getsize(bootstrap), packed.getbuffer().nbytes))
if not rows:
    sys.exit(f"no function was built under {build}")
print(f"\nsam build: {sys.argv[1]} s, {len(rows)} functions")
print(f"{'function':<28} {'bootstrap':>12} {'zip':>12}")
for name, raw, zipped in rows:
    print(f"{name:<28} {raw / 1e6:>10.2f} MB {zipped / 1e6:>10.2f} MB")
PY
