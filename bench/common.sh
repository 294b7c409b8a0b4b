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
