#!/usr/bin/env bash
# End-to-end timing of `mcpgen client --tool` (process start, token choice, initialize,
# tools/list, tools/call, DELETE, exit) against `mcpgen serve --mock` on loopback, and of
# `mcpgen demo` (create a profile, mint, serve in-process, list, call, refuse, clean up).
#
#   bash bench/client.sh                       # release build, 30 client runs, 10 demo runs
#   RUNS=100 DEMO_RUNS=20 bash bench/client.sh
#   CARGO_TARGET_DIR=/tmp/t bash bench/client.sh
#
# Uses hyperfine when installed (apt-get install -y hyperfine), else (or with NO_HYPERFINE=1)
# a bash loop over `date +%s%N`. Reports the median in milliseconds; the client target is <= 15 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-30}
DEMO_RUNS=${DEMO_RUNS:-10}
TARGET_MS=${TARGET_MS:-15}
have_hyperfine() { [ -z "${NO_HYPERFINE:-}" ] && command -v hyperfine >/dev/null; }
if [ "$RUNS" -lt 20 ] || [ "$DEMO_RUNS" -lt 10 ]; then
  echo "bench: use RUNS >= 20 and DEMO_RUNS >= 10 for a meaningful median" >&2
  exit 2
fi

echo "bench: building release…" >&2
cargo build --release --locked --quiet
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/mcpgen"

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN" --root "$tmp" up --instance bench >/dev/null 2>&1
# The server prints its URL as the first stdout line once it listens: that is the readiness
# signal, no sleeping. Its request log goes to a file (one line per request).
exec 3< <(exec "$BIN" --root "$tmp" serve bench --bind 127.0.0.1 --port 0 --mock 2>"$tmp/serve.log")
pid=$!
if ! read -r -t 30 URL <&3; then
  echo "bench: the server printed no URL; its log:" >&2
  cat "$tmp/serve.log" >&2
  exit 1
fi

client=("$BIN" --root "$tmp" client bench --url "$URL" --tool getOrders --args '{}')
# One checked run first: a benchmark of a failing command measures nothing.
"${client[@]}" >"$tmp/result.json"
jq -e '.[0].id == "ord-1001"' "$tmp/result.json" >/dev/null

ms_median() { # stdin: one duration in ns per line -> median in ms
  sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m / 1e6 }'
}

median_ms() { # name runs command… -> prints the median in ms
  local name=$1 runs=$2
  shift 2
  if have_hyperfine; then
    local quoted
    quoted=$(printf '%q ' "$@")
    hyperfine --style basic --warmup 3 --runs "$runs" -N --export-json "$tmp/$name.json" "$quoted" >&2
    jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$tmp/$name.json"
  else
    local i t0 t1
    for ((i = 0; i < 3; i++)); do "$@" >/dev/null 2>&1; done
    for ((i = 0; i < runs; i++)); do
      t0=$(date +%s%N)
      "$@" >/dev/null 2>&1
      t1=$(date +%s%N)
      echo $((t1 - t0))
    done | ms_median
  fi
}

tool="bash loop"
if have_hyperfine; then tool="hyperfine $(hyperfine --version | awk '{print $2}')"; fi
client_ms=$(median_ms client "$RUNS" "${client[@]}")
demo_ms=$(median_ms demo "$DEMO_RUNS" "$BIN" demo)
requests=$(grep -c ' /mcp ' "$tmp/serve.log" || true)

echo
echo "mcpgen client --tool getOrders (end to end, median of $RUNS, $tool): ${client_ms} ms (target <= ${TARGET_MS} ms)"
echo "mcpgen demo (median of $DEMO_RUNS, $tool): ${demo_ms} ms"
echo "server saw $requests requests; machine: $(nproc) cores, $(uname -sr)"
if awk -v m="$client_ms" -v t="$TARGET_MS" 'BEGIN { exit !(m <= t) }'; then
  echo "client: within target"
else
  echo "client: OVER target"
  exit 1
fi
