# Shared by the bench scripts (serve.sh, serve_oauth.sh, serve_ops.sh, bridge.sh); source it
# from the repository root.
#
# release_binary: build mcpgen in release mode, or take $MCPGEN_BIN (another build, for A/B
#   runs); sets BIN to its absolute path.
# work_dir: make the scratch folder WORK; on exit, the processes in SERVER_PID and PIDS are
#   stopped and WORK is removed.

release_binary() {
  if [ -n "${MCPGEN_BIN:-}" ]; then
    BIN=$(realpath "$MCPGEN_BIN")
    return
  fi
  echo "building mcpgen (release)..." >&2
  cargo build --release --quiet
  BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/mcpgen")
}

SERVER_PID=
PIDS=()

cleanup_work() {
  local pid
  for pid in $SERVER_PID "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}

work_dir() {
  WORK=$(mktemp -d)
  trap cleanup_work EXIT
}

# serve_url LOG: wait (at most 30 s) for the server SERVER_PID to print its URL into
# $WORK/url — showing LOG and failing if it exits first — and set URL.
serve_url() {
  local _
  for _ in $(seq 1 300); do
    [ -s "$WORK/url" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$1" >&2; exit 1; }
    sleep 0.1
  done
  URL=$(head -n1 "$WORK/url")
}

# stop_server: stop SERVER_PID and forget it.
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
