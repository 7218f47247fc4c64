#!/usr/bin/env bash
# Runs every fuzz target for $1 seconds (default 30) under cargo-fuzz, seeded with its saved
# inputs (fuzz/regressions/<target>/), and prints a Markdown table: target, seconds,
# executions, crashes. Exits 1 when any target crashed (its input is in fuzz/artifacts/<target>/).
set -uo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
case "$seconds" in
  ''|*[!0-9]*) echo "error: FUZZ_SECONDS=$seconds is not a whole number of seconds (e.g. FUZZ_SECONDS=600)" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
rows=""
failed=0
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/run.log"
  cargo fuzz run -O --debug-assertions "$t" "corpus/$t" "regressions/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
    [ "$crashes" -eq 0 ] && crashes="1 (exit $rc, see $log)"
    failed=1
  fi
  echo "$t: ${execs:-?} executions in ${seconds}s, crashes: $crashes"
  rows+="| \`$t\` | $seconds | ${execs:-?} | $crashes |"$'\n'
done
echo
echo "| target | seconds | executions | crashes |"
echo "|---|---|---|---|"
printf '%s' "$rows"
exit $failed
