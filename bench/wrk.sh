# Shared by the wrk benchmarks (bench/serve.sh, bench/serve_oauth.sh); source it.
# wrk_cell CONNECTIONS URL LABEL: run wrk with bench/serve.lua for $DURATION on at most
# $WRK_THREADS threads, print its report on stderr, and set RPS, P50 and P99 (ms); sets
# FAILED=1 when any request was not answered 2xx.

to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

wrk_cell() {
  local c=$1 url=$2 label=$3 threads out non2xx errors
  threads=$(( c < WRK_THREADS ? c : WRK_THREADS ))
  echo "== $label, $c connection(s), $DURATION" >&2
  out=$(wrk -t"$threads" -c"$c" -d"$DURATION" --latency -s bench/serve.lua "$url")
  echo "$out" >&2
  RPS=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
  P50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
  P99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { print $NF }')
  errors=$(echo "$out" | awk '/Socket errors:/ { print }')
  if [ -n "$non2xx" ] || [ -n "$errors" ]; then
    echo "error: not every request succeeded (${non2xx:-0} non-2xx; ${errors:-no socket errors})" >&2
    FAILED=1
  fi
}
