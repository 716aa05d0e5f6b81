#!/usr/bin/env bash
# molecule-lanes.sh JOBS SCENARIO... — run molecule scenarios, JOBS at a time.
# Scenarios are independent (own containers, own podman network and mirror), and most of their time is spent
# waiting (systemd boots, SSH, apt, timers), so two lanes on two cores finish sooner than one. Each scenario
# logs to .lab/molecule/<scenario>.log; a failed scenario's log tail is printed and the run fails at the end.
# Each step's duration (create, converge, idempotence, verify...) is printed when the scenario ends, so that
# where `make test` spends its time can be read from any run.
set -uo pipefail
shopt -s extglob
jobs=$1; shift
logs=${REMPART_LAB_DIR:-.lab}/molecule
mkdir -p "$logs"

run_one() {
  local scenario=$1 start rc
  start=$(date +%s)
  echo "=== molecule test -s $scenario (log: $logs/$scenario.log)"
  PYTHONUNBUFFERED=1 molecule test -s "$scenario" 2>&1 | step_clock > "$logs/$scenario.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then
    echo "=== $scenario passed in $(( $(date +%s) - start )) s"
  else
    echo "=== $scenario FAILED (rc $rc) after $(( $(date +%s) - start )) s; last lines of its log:"
    tail -n 80 "$logs/$scenario.log" | sed "s/^/[$scenario] /"
  fi
  grep -h '^=== step ' "$logs/$scenario.log" | sed "s/^=== step /=== $scenario: /"
  return "$rc"
}

step_clock() {  # copy stdin (colours removed); after each molecule step ("INFO [scenario > step] Executing"), a line with its duration
  local line step='' started=0 now
  while IFS= read -r line; do
    printf '%s\n' "$line"
    line=${line//$'\e'\[+([0-9;])m/}   # without colours
    if [[ $line =~ (\ \>\ |\ ➜\ )([a-z_]+)(\]|:)\ Executing$ ]]; then
      printf -v now '%(%s)T' -1
      [ -z "$step" ] || printf '=== step %s %d s\n' "$step" $((now - started))
      step=${BASH_REMATCH[2]} started=$now
    fi
  done
  printf -v now '%(%s)T' -1
  [ -z "$step" ] || printf '=== step %s %d s\n' "$step" $((now - started))
}
export -f run_one step_clock
export logs

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {}
