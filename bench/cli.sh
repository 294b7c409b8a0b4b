#!/usr/bin/env bash
# End-to-end timings of the release binary, as an operator or CI script sees them:
#   (a) `sa-token` as a whole process (median of >= 20 runs),
#   (b) `remint-all` on a profile with 10,000 tokens (median of 5 runs),
#   (c) `sa-tokens --json` on that profile (median of >= 10 runs).
# Uses hyperfine when installed (`apt-get install -y hyperfine`), else a bash loop timed with
# `date +%s%N`. Needs python3 to build the 10,000-token profile and to read hyperfine's JSON.
#
# Usage: bench/cli.sh            (respects CARGO_TARGET_DIR; RUNS_A, RUNS_B, RUNS_C, TOKENS override)
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
RUNS_A=${RUNS_A:-30}
RUNS_B=${RUNS_B:-5}
RUNS_C=${RUNS_C:-15}
TOKENS=${TOKENS:-10000}

echo "building release binary..." >&2
cargo build --release --quiet
BIN=$(realpath "$TARGET_DIR/release/mcpgen")

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/generated
export RUST_BACKTRACE=0
unset MCPGEN_ROOT

"$BIN" --root "$ROOT" up --instance small 2>/dev/null
"$BIN" --root "$ROOT" up --instance big 2>/dev/null

# The big profile: TOKENS entries cloned from `default` (distinct names, client ids, jtis), then
# one untimed remint-all so every token is real.
echo "creating $TOKENS tokens..." >&2
python3 - "$ROOT/big" "$TOKENS" <<'EOF'
import json, os, shutil, sys
folder, count = sys.argv[1], int(sys.argv[2])
path = os.path.join(folder, "profile.json")
profile = json.load(open(path))
template = next(t for t in profile["sa_tokens"] if t["name"] == "default")
source = os.path.join(folder, template["filename"])
for i in range(count):
    name = f"bulk-{i:05d}"
    entry = dict(template, name=name, filename=f"sa/{name}.jwt", client_id=name, primary=False, jti=f"bulk-jti-{i}")
    profile["sa_tokens"].append(entry)
    shutil.copyfile(source, os.path.join(folder, entry["filename"]))
    os.chmod(os.path.join(folder, entry["filename"]), 0o600)
with open(path, "w") as f:
    json.dump(profile, f, indent=2)
EOF
"$BIN" --root "$ROOT" remint-all big 2>/dev/null
count=$("$BIN" --root "$ROOT" sa-tokens big --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sa_tokens"]))')
echo "profile big has $count tokens" >&2

median_of_ns() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# time_it NAME RUNS CMD... -> prints the median in milliseconds
time_it() {
    local name=$1 runs=$2
    shift 2
    if command -v hyperfine >/dev/null; then
        local json=$WORK/$name.json
        hyperfine -N --style none --warmup 2 --runs "$runs" --output null --export-json "$json" "$*" >&2
        python3 -c 'import json,sys,statistics; t=json.load(open(sys.argv[1]))["results"][0]["times"]; print("%.2f" % (statistics.median(t)*1000))' "$json"
    else
        local i start end
        for ((i = 0; i < 2; i++)); do "$@" >/dev/null 2>&1; done
        for ((i = 0; i < runs; i++)); do
            start=$(date +%s%N)
            "$@" >/dev/null 2>&1
            end=$(date +%s%N)
            echo $((end - start))
        done | median_of_ns | awk '{printf "%.2f\n", $1 / 1e6}'
    fi
}

a=$(time_it sa-token "$RUNS_A" "$BIN" --root "$ROOT" sa-token small --name ci-bot --scopes orders.read --days 30)
b=$(time_it remint-all "$RUNS_B" "$BIN" --root "$ROOT" remint-all big)
c=$(time_it sa-tokens-json "$RUNS_C" "$BIN" --root "$ROOT" sa-tokens big --json)

# Everything still verifies after the timed runs.
"$BIN" --root "$ROOT" sa-verify big --name bulk-09999 >/dev/null 2>&1 || "$BIN" --root "$ROOT" sa-verify big >/dev/null

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "ok" : "SLOW" }'; }
tool=$(command -v hyperfine >/dev/null && echo hyperfine || echo "bash loop")
echo
echo "mcpgen end-to-end ($(nproc) cores, $tool, median)"
printf '%-34s %6s %12s %10s  %s\n' "command" "runs" "median" "target" "verdict"
printf '%-34s %6s %9s ms %7s ms  %s\n' "sa-token (whole process)" "$RUNS_A" "$a" 5 "$(verdict "$a" 5)"
printf '%-34s %6s %9s ms %7s ms  %s\n' "remint-all ($count tokens)" "$RUNS_B" "$b" 1000 "$(verdict "$b" 1000)"
printf '%-34s %6s %9s ms %7s ms  %s\n' "sa-tokens --json ($count tokens)" "$RUNS_C" "$c" 100 "$(verdict "$c" 100)"
