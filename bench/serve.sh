#!/usr/bin/env bash
# Throughput and latency of authenticated MCP `tools/call` on `mcpgen serve`: release build,
# mock mode (no downstream), loopback, wrk with bench/serve.lua at 1 and 32 connections, with the
# verified-token cache on (the default) and off (MCPGEN_TOKEN_CACHE=0: a full Ed25519 + claims
# verification per request).
#
#   bench/serve.sh                  # DURATION=15s, WRK_THREADS=1
#   DURATION=30s bench/serve.sh
#
# Targets on 2 cores, cache on, 32 connections: >= 10,000 calls/s and p99 <= 5 ms. wrk runs on
# the same machine and takes part of the CPU from the server. Exit status 1 if a target is missed
# or any request was not answered 2xx.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
WRK_THREADS=${WRK_THREADS:-1}
CONNECTIONS=${CONNECTIONS:-"1 32"}
TARGET_RPS=10000
TARGET_P99_MS=5

if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing it with apt-get" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y wrk >&2; else sudo apt-get install -y wrk >&2; fi
fi
for tool in curl awk; do command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }; done

. bench/common.sh
release_binary
work_dir

"$BIN" --root "$WORK" up --instance bench >/dev/null 2>&1
TOKEN=$(cat "$WORK/bench/sa/token.jwt")
export MCPGEN_BENCH_TOKEN=$TOKEN

# Convert a wrk duration (12.3us, 1.2ms, 1.0s) to milliseconds.
. bench/wrk.sh

start_server() { # $1: MCPGEN_TOKEN_CACHE value
  : >"$WORK/url"
  MCPGEN_TOKEN_CACHE=$1 "$BIN" --root "$WORK" serve bench --port 0 --mock >"$WORK/url" 2>"$WORK/server-cache$1.log" &
  SERVER_PID=$!
  serve_url "$WORK/server-cache$1.log"
  [ -n "$URL" ] || { echo "error: the server printed no URL" >&2; exit 1; }
  # Open a session the way an MCP client does: initialize, then notifications/initialized.
  MCPGEN_BENCH_SESSION=$(curl -fsS -D - -o /dev/null "$URL" \
      -H "X-OEMCP-SERVICEACCOUNT: $TOKEN" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"0"}}}' \
    | awk -F': ' 'tolower($1) == "mcp-session-id" { gsub(/\r/, "", $2); print $2 }')
  [ -n "$MCPGEN_BENCH_SESSION" ] || { echo "error: initialize returned no session" >&2; exit 1; }
  export MCPGEN_BENCH_SESSION
  curl -fsS -o /dev/null "$URL" -H "X-OEMCP-SERVICEACCOUNT: $TOKEN" -H "Mcp-Session-Id: $MCPGEN_BENCH_SESSION" \
    -H 'MCP-Protocol-Version: 2025-11-25' -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  # The benchmarked request must be a successful tool call, not a cheap refusal.
  local check
  check=$(curl -fsS "$URL" -H "X-OEMCP-SERVICEACCOUNT: $TOKEN" -H "Mcp-Session-Id: $MCPGEN_BENCH_SESSION" \
    -H 'MCP-Protocol-Version: 2025-11-25' -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getOrder","arguments":{"orderId":"ord-1001"}}}')
  case "$check" in
    *'"isError":false'*'ord-1001'* | *'ord-1001'*'"isError":false'*) ;;
    *) echo "error: the benchmarked tools/call does not succeed: $check" >&2; exit 1 ;;
  esac
}

FAILED=0
RESULTS=()
for cache in 1 0; do
  start_server "$cache"
  label=$([ "$cache" = 1 ] && echo "on" || echo "off")
  for c in $CONNECTIONS; do
    wrk_cell "$c" "$URL" "token cache $label"
    rps=$RPS p50=$P50 p99=$P99
    verdict=""
    if [ "$cache" = 1 ] && [ "$c" = 32 ]; then
      if awk -v r="$rps" -v p="$p99" -v tr="$TARGET_RPS" -v tp="$TARGET_P99_MS" 'BEGIN { exit !(r >= tr && p <= tp) }'; then
        verdict="target met (>= $TARGET_RPS/s, p99 <= ${TARGET_P99_MS} ms)"
      else
        verdict="TARGET MISSED (>= $TARGET_RPS/s, p99 <= ${TARGET_P99_MS} ms)"
        FAILED=1
      fi
    fi
    RESULTS+=("$(printf '%-6s %5s %12s %10s %10s  %s' "$label" "$c" "$rps" "$p50" "$p99" "$verdict")")
  done
  # Tokens never reach the log, not even under load.
  if grep -qF "$TOKEN" "$WORK/server-cache$cache.log"; then echo "error: the server logged the token" >&2; FAILED=1; fi
  stop_server
done

echo
echo "mcpgen serve, authenticated tools/call (mock), $(nproc) cores, wrk -t<=$WRK_THREADS -d$DURATION"
printf '%-6s %5s %12s %10s %10s\n' "cache" "conns" "calls/s" "p50 ms" "p99 ms"
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
