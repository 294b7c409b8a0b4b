#!/usr/bin/env bash
# `mcpgen bridge` as an MCP host sees it, beside `mcp-remote` (npm, the usual stdio-to-HTTP
# bridge, pinned in tests/peers/node) and a direct call: release build, `serve --mock` on
# loopback, bench/bridge_session.py as the host (python3).
#
#   whole session  spawn, initialize, initialized, tools/list, one tools/call, EOF, exit
#                  — mcpgen bridge, mcp-remote, and `mcpgen client --tool` (one process)
#   per call       one tools/call inside an open session — mcpgen bridge, mcp-remote, and the
#                  same request straight over keep-alive HTTP (the baseline)
#
#   bench/bridge.sh                 # SESSIONS=30 CALLS=2000
#
# Targets: a bridge session >= 10x faster than mcp-remote's, and <= 0.5 ms added per call over
# the direct HTTP request (medians). Exit status 1 if a target is missed. Measured on 2 cores:
# session 7.4 ms vs 571 ms (77x); per call 0.20 ms direct, 0.30 ms bridge, 1.21 ms mcp-remote.
set -euo pipefail

cd "$(dirname "$0")/.."
SESSIONS=${SESSIONS:-30}
CALLS=${CALLS:-2000}
for tool in python3 node npm awk; do command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }; done

. bench/common.sh
release_binary
work_dir

# mcp-remote: the tests' provisioned copy, else npm ci of the same lock into the work folder.
REMOTE="${CARGO_TARGET_DIR:-target}/peers/node/node_modules/.bin/mcp-remote"
if [ ! -x "$REMOTE" ]; then
  echo "installing mcp-remote from tests/peers/node/package-lock.json..." >&2
  cp tests/peers/node/package.json tests/peers/node/package-lock.json "$WORK/"
  (cd "$WORK" && npm ci --no-audit --no-fund --no-update-notifier --loglevel=warn >&2)
  REMOTE="$WORK/node_modules/.bin/mcp-remote"
fi
export MCP_REMOTE_CONFIG_DIR="$WORK/mcp-auth"

"$BIN" --root "$WORK" up --instance bench >/dev/null 2>&1
TOKEN=$(cat "$WORK/bench/sa/token.jwt")
HEADER=X-OEMCP-SERVICEACCOUNT

"$BIN" --root "$WORK" serve bench --port 0 --mock >"$WORK/url" 2>"$WORK/server.log" &
SERVER_PID=$!
serve_url "$WORK/server.log"

DRIVER="python3 bench/bridge_session.py"
BRIDGE=("$BIN" --root "$WORK" bridge bench --url "$URL")
MCP_REMOTE=(node "$REMOTE" "$URL" --header "$HEADER:$TOKEN" --transport http-only)
CLIENT=("$BIN" --root "$WORK" client bench --url "$URL" --tool getOrders --args '{}')

median() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["median_ms"])' "$1"; }

echo "whole session ($SESSIONS runs each)..." >&2
s_bridge=$($DRIVER session "$SESSIONS" -- "${BRIDGE[@]}")
s_remote=$($DRIVER session "$SESSIONS" -- "${MCP_REMOTE[@]}")
s_client=$($DRIVER process "$SESSIONS" -- "${CLIENT[@]}")
echo "per call ($CALLS calls each)..." >&2
c_bridge=$($DRIVER calls "$CALLS" -- "${BRIDGE[@]}")
c_remote=$($DRIVER calls "$CALLS" -- "${MCP_REMOTE[@]}")
c_direct=$($DRIVER http "$CALLS" "$URL" "$HEADER" "$TOKEN")

printf '%-34s %12s\n' "measure (median)" "ms"
printf '%-34s %12s\n' "session: mcpgen bridge" "$(median "$s_bridge")"
printf '%-34s %12s\n' "session: mcp-remote 0.15.1" "$(median "$s_remote")"
printf '%-34s %12s\n' "one-shot: mcpgen client --tool" "$(median "$s_client")"
printf '%-34s %12s\n' "call in session: direct HTTP" "$(median "$c_direct")"
printf '%-34s %12s\n' "call in session: mcpgen bridge" "$(median "$c_bridge")"
printf '%-34s %12s\n' "call in session: mcp-remote" "$(median "$c_remote")"

python3 - "$s_bridge" "$s_remote" "$c_bridge" "$c_direct" <<'PY'
import json, sys
s_bridge, s_remote, c_bridge, c_direct = (json.loads(a)["median_ms"] for a in sys.argv[1:])
speedup = s_remote / s_bridge
added = c_bridge - c_direct
print(f"session speed-up over mcp-remote: {speedup:.1f}x (target >= 10x)")
print(f"added per call over direct HTTP: {added:.3f} ms (target <= 0.5 ms)")
sys.exit(0 if speedup >= 10 and added <= 0.5 else 1)
PY
