#!/usr/bin/env bash
# molecule-lanes.sh JOBS SCENARIO... — run molecule scenarios, JOBS at a time.
# Scenarios are independent (own containers, own podman network and mirror), and most of their time is spent
# waiting (systemd boots, SSH, apt, timers), so two lanes on two cores finish sooner than one. Each scenario
# logs to .lab/molecule/<scenario>.log; a failed scenario's log tail is printed and the run fails at the end.
set -uo pipefail
jobs=$1; shift
logs=${REMPART_LAB_DIR:-.lab}/molecule
mkdir -p "$logs"

run_one() {
  local scenario=$1 start rc
  start=$(date +%s)
  echo "=== molecule test -s $scenario (log: $logs/$scenario.log)"
  molecule test -s "$scenario" > "$logs/$scenario.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "=== $scenario passed in $(( $(date +%s) - start )) s"
  else
    echo "=== $scenario FAILED (rc $rc) after $(( $(date +%s) - start )) s; last lines of its log:"
    tail -n 80 "$logs/$scenario.log" | sed "s/^/[$scenario] /"
  fi
  return "$rc"
}
export -f run_one
export logs

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {}
