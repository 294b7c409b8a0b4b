#!/usr/bin/env bash
# Throughput and latency of authenticated MCP `tools/call` on `mcpgen serve` in `mode: "oauth"`
# with an identity provider's RS256 access token (RSA 2048) verified through a JWKS: release
# build, mock mode, loopback, wrk with bench/serve.lua at 1 and 32 connections. serve caches a
# JWKS-verified token for up to 30 s while the key set is unchanged; MCPGEN_TOKEN_CACHE=0 makes
# every request pay a full RS256 verification. Compare with bench/serve.sh (the profile's own
# EdDSA tokens, cache on and off).
#
#   bench/serve_oauth.sh                 # DURATION=10s, WRK_THREADS=1
#   DURATION=30s CONNECTIONS="32" bench/serve_oauth.sh
#
# Needs: wrk (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`; the script
# installs it with apt-get when missing), openssl (key and token), python3 (serves the JWKS),
# curl, awk. Exit status 1 if any request was not answered 2xx or the token shows in the log.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
WRK_THREADS=${WRK_THREADS:-1}
CONNECTIONS=${CONNECTIONS:-"1 32"}

if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing it with apt-get (or install it yourself: apt-get install -y wrk / brew install wrk)" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y wrk >&2; else sudo apt-get install -y wrk >&2; fi
fi
for tool in curl awk openssl python3; do command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }; done

. bench/common.sh
release_binary
work_dir

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# The "identity provider": an RSA 2048 key, its public JWK served by python3 on loopback.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/idp.pem" 2>/dev/null
N=$(openssl rsa -in "$WORK/idp.pem" -noout -modulus 2>/dev/null | cut -d= -f2 | python3 -c 'import sys, binascii, base64; print(base64.urlsafe_b64encode(binascii.unhexlify(sys.stdin.read().strip())).decode().rstrip("="))')
mkdir -p "$WORK/www"
printf '{"keys":[{"kty":"RSA","kid":"bench-rs256","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}]}' "$N" >"$WORK/www/jwks.json"
JWKS_PORT=$(free_port)
python3 -m http.server "$JWKS_PORT" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
PIDS+=($!)
ISSUER="http://127.0.0.1:$JWKS_PORT"

# The profile, on a port fixed now: its URL is the audience the token must name.
PORT=$(free_port)
"$BIN" --root "$WORK/root" up --instance bench --port "$PORT" >/dev/null 2>&1
URL="http://127.0.0.1:$PORT/mcp"
python3 - "$WORK/root/bench/mcp_server_config.json" "$ISSUER" "$URL" <<'EOF'
import json, sys
path, issuer, url = sys.argv[1:]
doc = json.load(open(path))
sa = doc["security"]["authentication"]["service_account"]
sa.update({"mode": "oauth", "public_key": None, "jwks_uri": issuer + "/jwks.json", "issuer": issuer, "audience": url,
           "algorithms": ["RS256"]})
json.dump(doc, open(path, "w"), indent=2)
EOF

# An RFC 9068 access token, as an IdP would issue it.
NOW=$(date +%s)
HEADER=$(printf '{"alg":"RS256","typ":"at+jwt","kid":"bench-rs256"}' | b64url)
CLAIMS=$(printf '{"iss":"%s","sub":"svc-bench","client_id":"svc-bench","aud":"%s","scope":"orders.read products.read","iat":%d,"exp":%d,"jti":"bench-%d"}' \
  "$ISSUER" "$URL" "$NOW" "$((NOW + 3600))" "$NOW" | b64url)
SIGNATURE=$(printf '%s.%s' "$HEADER" "$CLAIMS" | openssl dgst -sha256 -sign "$WORK/idp.pem" | b64url)
TOKEN="$HEADER.$CLAIMS.$SIGNATURE"
export MCPGEN_BENCH_TOKEN=$TOKEN

. bench/wrk.sh

"$BIN" --root "$WORK/root" serve bench --mock >"$WORK/url" 2>"$WORK/server.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 1 300); do
  [ -s "$WORK/url" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
[ "$(head -n1 "$WORK/url")" = "$URL" ] || { echo "error: the server printed $(head -n1 "$WORK/url"), not $URL" >&2; exit 1; }

HDRS=(-H "X-OEMCP-SERVICEACCOUNT: $TOKEN" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
MCPGEN_BENCH_SESSION=$(curl -fsS -D - -o /dev/null "$URL" "${HDRS[@]}" \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"0"}}}' \
  | awk -F': ' 'tolower($1) == "mcp-session-id" { gsub(/\r/, "", $2); print $2 }')
[ -n "$MCPGEN_BENCH_SESSION" ] || { echo "error: initialize returned no session; server log:" >&2; cat "$WORK/server.log" >&2; exit 1; }
export MCPGEN_BENCH_SESSION
SESSION_HDRS=(-H "Mcp-Session-Id: $MCPGEN_BENCH_SESSION" -H 'MCP-Protocol-Version: 2025-11-25')
curl -fsS -o /dev/null "$URL" "${HDRS[@]}" "${SESSION_HDRS[@]}" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
check=$(curl -fsS "$URL" "${HDRS[@]}" "${SESSION_HDRS[@]}" \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getOrder","arguments":{"orderId":"ord-1001"}}}')
case "$check" in
  *'"isError":false'*) ;;
  *) echo "error: the benchmarked tools/call does not succeed: $check" >&2; exit 1 ;;
esac

FAILED=0
RESULTS=()
for c in $CONNECTIONS; do
  wrk_cell "$c" "$URL" "oauth RS256 via JWKS"
  rps=$RPS p50=$P50 p99=$P99
  RESULTS+=("$(printf '%5s %12s %10s %10s' "$c" "$rps" "$p50" "$p99")")
done
if grep -qF "$SIGNATURE" "$WORK/server.log"; then echo "error: the server logged the token" >&2; FAILED=1; fi

echo
echo "mcpgen serve, mode oauth, RS256 access token via JWKS, tools/call (mock), $(nproc) cores, wrk -t<=$WRK_THREADS -d$DURATION"
printf '%5s %12s %10s %10s\n' "conns" "calls/s" "p50 ms" "p99 ms"
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
