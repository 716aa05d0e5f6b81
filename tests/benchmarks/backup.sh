#!/usr/bin/env bash
# Benchmark of the deployed backup path: a server-initiated job through the SSH tunnel into the append-only REST
# repository, admission included, against restic alone (the client's restic straight into a local repository with
# the same per-dataset options: no SSH, TLS, rest-server nor admission), `tar | zstd -T0` and `cp -a`, on the same
# generated hospital-like dataset, in one run, alternating baselines and jobs so that load noise cancels.
# Targets: full backup <= 1.25x restic alone, incremental after a 2 % change <= 1.5x restic alone, restore-all
# <= 1.3x `cp -a`. CPU-seconds per side (client: restic, Rempart's client program, the rest = sshd's end of the
# transport; server: rest-server, the job units = ssh's end of the transport + admission + ledger).
#   SIZE=3000 tests/benchmarks/backup.sh        # MiB of generated data (default 3000; SIZE=500 for a quick run)
#   ROUNDS=5 ...                                 # cp -a / restore-all pairs (default 3; the medians are compared)
#   RESTORE_ARGS='--jobs 2' ...                  # options of restore-all (default: the program's)
#   KEEP=1 ...                                   # leave the benchmark lab running afterwards; a second run
#                                                # reuses its generated data (new repositories, cold caches)
# Needs the lab image (lab/build-image.sh) and lab/host-setup.sh. Prints times, MiB/s, ratios, CPU and memory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
inventory=$root/tests/benchmarks/backup-inventory
export PATH=$root/.venv/bin:$PATH REMPART_ROOT=$root
SIZE=${SIZE:-3000}
server=bb-backup-01
client=bb-files-01
datasets=(bench-sql bench-dicom bench-docs)

down() { [ "${KEEP:-0}" = 1 ] || rempart-lab down --inventory "$inventory" >/dev/null; }
trap down EXIT
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# measure CONTAINER COMMAND -> "wall_s cpu_s maxrss_kib rc": run with the jobs' priority (same transient-unit
# properties as the client job: Nice 10, CPU quota, best-effort I/O 7) so that baselines and jobs compete alike
# with whatever else runs on the machine; rusage of the command's children.
priority=(-p Nice=10 -p CPUQuota="${CPU_QUOTA:-200%}" -p IOSchedulingClass=best-effort -p IOSchedulingPriority=7)
measure() {
  podman exec "$1" systemd-run --quiet --wait --pipe --collect "${priority[@]}" python3 -c '
import resource, subprocess, sys, time
t = time.monotonic(); r = subprocess.run(sys.argv[1], shell=True, executable="/bin/bash", stdout=subprocess.DEVNULL)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{time.monotonic() - t:.2f} {u.ru_utime + u.ru_stime:.2f} {u.ru_maxrss} {r.returncode}")' "$2"
}
# jobs: start each dataset's job unit on the server, as its timer would; client CPU/RSS and restic's own duration
# (its summary) from the ledger: job wall time - restic time = the deployed path's overhead (SSH, checks after)
run_jobs() {
  local wall=0 cpu=0 rss=0 restic_s=0 line
  for d in "${datasets[@]}"; do
    line=$(podman exec "$server" python3 -c '
import subprocess, sys, time
t = time.monotonic(); r = subprocess.run(["systemctl", "start", sys.argv[1]])
print(f"{time.monotonic() - t:.2f} 0 0 {r.returncode}")' "rempart-backup@$d.service")
    [ "$(echo "$line" | cut -d' ' -f4)" = 0 ] || { echo "job $d failed" >&2; podman exec "$server" journalctl -u "rempart-backup@$d" -n 20 >&2; exit 1; }
    wall=$(echo "scale=2; $wall + $(echo "$line" | cut -d' ' -f1)" | bc)
    read -r c r t < <(podman exec "$server" python3 -c '
import json, sys
e = [json.loads(l) for l in open(f"/var/lib/rempart/ledger/{sys.argv[1]}.jsonl") if l.strip()][-1]
print(round(e["client"]["cpu_seconds"], 2), e["client"]["max_rss_kib"], round(e["client"]["restic"]["total_duration"], 2))' "$d")
    cpu=$(echo "scale=2; $cpu + $c" | bc); rss=$(( r > rss ? r : rss )); restic_s=$(echo "scale=2; $restic_s + $t" | bc)
  done
  echo "$wall $cpu $rss 0 $restic_s"
}
# restic alone: per dataset, the job's options (compression, read concurrency, GOMAXPROCS from the CPU quota, --no-scan)
mapfile -t restic_options < <(python - "$inventory/group_vars/all/establishment.yml" <<'EOF'
import sys, yaml
for d in yaml.safe_load(open(sys.argv[1]))["establishment"]["datasets"]:
    b = d.get("backup", {})
    print(d["name"], b.get("compression", "auto"), b.get("read_concurrency", 2), *d["paths"])
EOF
)
quota=$(sed -n 's/^backup_client_job_cpu_quota: *\([0-9]*\)%.*/\1/p' "$inventory/group_vars/all/lab.yml")
gomaxprocs=$(( (${quota:-100} + 99) / 100 ))  # as the backup_client role derives it from the job's CPU quota
restic_alone() {  # restic_alone REPO_DIR -> "wall_s cpu_s maxrss_kib rc" over the three datasets, one after the other
  local script="" line name comp conc paths
  for line in "${restic_options[@]}"; do
    read -r name comp conc paths <<<"$line"
    script+="[ -d $1/$name ] || restic -r $1/$name init -q; RESTIC_COMPRESSION=$comp RESTIC_READ_CONCURRENCY=$conc restic -r $1/$name backup -q --no-scan --host bench --tag rempart --tag dataset-$name $paths || exit 1; "
  done
  measure "$client" "export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=/var/tmp/b/restic-cache GOMAXPROCS=$gomaxprocs; $script"
}
# CPU-seconds used so far: a container as a whole (its cgroup, v1 or v2, read on this machine), rest-server's
# process on the server (a long-running daemon: utime + stime)
container_cpu() {
  local path; path=$(podman inspect -f '{{.State.CgroupPath}}' "$1")
  if [ -f "/sys/fs/cgroup/cpuacct$path/cpuacct.usage" ]; then
    awk '{printf "%.2f", $1 / 1e9}' "/sys/fs/cgroup/cpuacct$path/cpuacct.usage"
  else
    awk '/^usage_usec/ {printf "%.2f", $2 / 1e6}' "/sys/fs/cgroup$path/cpu.stat"
  fi
}
rest_server_cpu() {
  podman exec "$server" python3 -c '
import os, subprocess
pid = int(subprocess.check_output(["systemctl", "show", "-P", "MainPID", "rempart-rest-server.service"]))
fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
print(round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2))'
}
sides() {  # sides -> "client_total server_total rest_server" CPU-seconds so far
  echo "$(container_cpu "$client") $(container_cpu "$server") $(rest_server_cpu)"
}
admission_s() {  # the server's own checks after each job (admission), summed over the datasets' last jobs
  podman exec "$server" sh -c 'cat /var/lib/rempart/status/*.json' \
    | python -c 'import json, sys; print(round(sum(json.loads(l).get("admission_seconds", 0) for l in sys.stdin if l.strip()), 2))'
}
mibs() { echo "scale=1; $1 / $2" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

echo "== lab up, converge (roles backup_server + backup_client)"
rempart-lab up --inventory "$inventory" >/dev/null
(cd "$root" && ansible-playbook -i "$inventory" tests/benchmarks/backup-converge.yml >/tmp/rempart-bench-converge.log) \
  || { tail -30 /tmp/rempart-bench-converge.log; exit 1; }
stamp="$SIZE $(sha256sum "$root/tests/benchmarks/backup-generate.py" | cut -c1-16)"
if [ "$(podman exec "$client" cat /var/tmp/bench.stamp 2>/dev/null)" != "$stamp" ]; then
  echo "== generating ${SIZE} MiB of hospital-like data on $client"
  podman cp "$root/tests/benchmarks/backup-generate.py" "$client:/usr/local/bin/backup-generate.py"
  podman exec "$client" sh -c "rm -rf /srv/bench /var/tmp/b && python3 /usr/local/bin/backup-generate.py /srv/bench $SIZE"
  podman exec "$client" sh -c "echo '$stamp' > /var/tmp/bench.stamp"
fi
echo "== new empty repositories, no ledger, no client cache (the full backup starts from nothing)"
podman exec "$server" sh -c "rm -rf /srv/rempart/repos/* /var/lib/rempart/ledger /var/lib/rempart/status \
  /var/lib/rempart/holds /var/lib/rempart/manifests /var/lib/rempart/cache /var/lib/rempart/admission \
  /var/lib/rempart/quarantine /var/lib/rempart/rowsample"
podman exec "$server" rempart-backup-admin init "${datasets[@]}" >/dev/null  # as the role does: init, then the key re-sealed
podman exec "$client" sh -c "rm -rf /var/lib/rempart-backup-client/* /var/cache/rempart-backup-client/*"
bytes=$(podman exec "$client" du -sb /srv/bench | cut -f1)
mib=$(echo "scale=1; $bytes / 1048576" | bc)
files=$(podman exec "$client" sh -c 'find /srv/bench -type f | wc -l')
echo "   $mib MiB in $files files (sql / dicom / docs MiB: $(podman exec "$client" sh -c 'du -sm /srv/bench/sql /srv/bench/dicom /srv/bench/docs | cut -f1 | paste -sd/'))"
podman exec "$client" mkdir -p /var/tmp/b

drop_caches; tz1=$(measure "$client" "tar -C /srv/bench -cf - . | zstd -T0 -q -o /var/tmp/b/bench.tar.zst")
zst=$(podman exec "$client" stat -c %s /var/tmp/b/bench.tar.zst); podman exec "$client" rm -f /var/tmp/b/bench.tar.zst
drop_caches; ra1=$(restic_alone /var/tmp/b/alone1)
drop_caches; before=$(sides); full=$(run_jobs); after=$(sides)
full_admission=$(admission_s)
full_sides=$(paste -d' ' <(echo "$before") <(echo "$after") | awk '{printf "%.2f %.2f %.2f", $4-$1, $5-$2, $6-$3}')
drop_caches; ra2=$(restic_alone /var/tmp/b/alone2); podman exec "$client" rm -rf /var/tmp/b/alone1
# the full restore an establishment runs after a disaster: every dataset at once (rempart-backup-admin restore-all),
# against cp -a of the same data: ROUNDS (default 3) interleaved pairs, each from cold caches; the ratio is the
# median restore over the median cp -a (the noise of either alone is about a second between runs of this machine)
restore_all() { measure "$server" "rm -rf /var/tmp/r; rempart-backup-admin restore-all ${RESTORE_ARGS:-} /var/tmp/r ${datasets[*]} >/dev/null"; }
median() { printf '%s\n' "$@" | sort -n -k1,1 | awk '{line[NR] = $0} END {print line[int((NR + 1) / 2)]}'; }
cps=(); restores=()
for round in $(seq "${ROUNDS:-3}"); do
  drop_caches; cps+=("$(measure "$client" "cp -a /srv/bench /var/tmp/b/copy")"); podman exec "$client" rm -rf /var/tmp/b/copy
  drop_caches; restores+=("$(restore_all)")
  [ "$(echo "${restores[-1]}" | cut -d' ' -f4)" = 0 ] || { echo "restore-all failed (round $round)" >&2; exit 1; }
  if [ "$round" = 1 ]; then
    restored=$(podman exec "$server" du -sb /var/tmp/r/srv/bench | cut -f1)
    podman exec "$server" rm -rf /var/tmp/r
    drop_caches; tz2=$(measure "$client" "tar -C /srv/bench -cf - . | zstd -T0 -q -o /var/tmp/b/bench.tar.zst"); podman exec "$client" rm -f /var/tmp/b/bench.tar.zst
  fi
  podman exec "$server" rm -rf /var/tmp/r
done
cp1=$(median "${cps[@]}"); restore=$(median "${restores[@]}")
rounds=$(for i in "${!cps[@]}"; do echo "scale=2; $(echo "${restores[$i]}" | cut -d' ' -f1) / $(echo "${cps[$i]}" | cut -d' ' -f1)" | bc; done | paste -sd' ')
podman exec "$client" python3 /usr/local/bin/backup-generate.py /srv/bench 0 change 2
# incremental: restic alone into the second local repository (its parent: the full above), then the jobs
drop_caches; ri=$(restic_alone /var/tmp/b/alone2)
drop_caches; before=$(sides); incr=$(run_jobs); after=$(sides)
incr_admission=$(admission_s)
incr_sides=$(paste -d' ' <(echo "$before") <(echo "$after") | awk '{printf "%.2f %.2f %.2f", $4-$1, $5-$2, $6-$3}')
podman exec "$client" rm -rf /var/tmp/b/alone2 /var/tmp/b/restic-cache
rest_hwm=$(podman exec "$server" sh -c 'grep VmHWM /proc/$(systemctl show -P MainPID rempart-rest-server.service)/status' | awk '{print int($2 / 1024)}')
repo=$(podman exec "$server" du -sb /srv/rempart/repos | cut -f1)

f() { echo "$1" | cut -d' ' -f"$2"; }
tz=$(echo "scale=2; ($(f "$tz1" 1) + $(f "$tz2" 1)) / 2" | bc); cp=$(f "$cp1" 1)
ra=$(echo "scale=2; ($(f "$ra1" 1) + $(f "$ra2" 1)) / 2" | bc); ra_cpu=$(echo "scale=2; ($(f "$ra1" 2) + $(f "$ra2" 2)) / 2" | bc)
row() { printf '%-44s %8s %9s %9s %10s\n' "$@"; }
echo
echo "== results: $mib MiB, $files files, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
row "step" "time s" "MiB/s" "CPU s" "max RSS MiB"
row "tar | zstd -T0 (mean of 2)" "$tz" "$(mibs "$mib" "$tz")" "$(f "$tz1" 2)" "$(( $(f "$tz1" 3) / 1024 ))"
row "cp -a (median of ${ROUNDS:-3})" "$cp" "$(mibs "$mib" "$cp")" "$(f "$cp1" 2)" "$(( $(f "$cp1" 3) / 1024 ))"
row "restic alone, full (mean of 2)" "$ra" "$(mibs "$mib" "$ra")" "$ra_cpu" "$(( $(f "$ra1" 3) / 1024 ))"
row "restic alone, incremental after 2 % change" "$(f "$ri" 1)" "$(mibs "$mib" "$(f "$ri" 1)")" "$(f "$ri" 2)" "$(( $(f "$ri" 3) / 1024 ))"
row "rempart full backup (pull, 3 jobs)" "$(f "$full" 1)" "$(mibs "$mib" "$(f "$full" 1)")" "$(f "$full" 2)" "$(( $(f "$full" 3) / 1024 ))"
row "rempart incremental after 2 % change" "$(f "$incr" 1)" "$(mibs "$mib" "$(f "$incr" 1)")" "$(f "$incr" 2)" "$(( $(f "$incr" 3) / 1024 ))"
row "rempart full restore (restore-all, median of ${ROUNDS:-3})" "$(f "$restore" 1)" "$(mibs "$mib" "$(f "$restore" 1)")" "$(f "$restore" 2)" "$(( $(f "$restore" 3) / 1024 ))"
echo
echo "CPU-seconds per side during the jobs (full | incremental):"
for which in full incr; do
  eval "jobs_line=\$$which sides_line=\$${which}_sides"
  # shellcheck disable=SC2154
  c_total=$(f "$sides_line" 1); s_total=$(f "$sides_line" 2); rest=$(f "$sides_line" 3); restic_cpu=$(f "$jobs_line" 2)
  echo "  $which: client $c_total (restic $restic_cpu, Rempart's client program + sshd $(echo "$c_total - $restic_cpu" | bc)), server $s_total (rest-server $rest, job units: ssh + admission + ledger $(echo "$s_total - $rest" | bc))"
done
echo "  admission (the server's checks after each job, inside the job time): full ${full_admission} s, incremental ${incr_admission} s"
echo "  rest-server peak RSS ${rest_hwm} MiB"
echo
echo "full backup / restic alone        : $(ratio "$(f "$full" 1)" "$ra")   (target <= 1.25)"
echo "incremental / restic alone        : $(ratio "$(f "$incr" 1)" "$(f "$ri" 1)")   (target <= 1.5)"
echo "restore-all / cp -a               : $(ratio "$(f "$restore" 1)" "$cp")   (target <= 1.3; each round: $rounds)"
echo "full backup / tar|zstd            : $(ratio "$(f "$full" 1)" "$tz")"
echo "restic's own time inside the jobs : full $(f "$full" 5) s, incremental $(f "$incr" 5) s (the rest of the job wall time: SSH, job start, admission)"
echo "repository / data                 : $(ratio "$repo" "$bytes")   (tar.zst / data: $(ratio "$zst" "$bytes"))"
echo "restored bytes == data            : $([ "$restored" = "$bytes" ] && echo yes || echo "NO ($restored vs $bytes)")"
echo "(every step runs with the jobs' priority: Nice 10, CPUQuota ${CPU_QUOTA:-200%}, best-effort I/O 7;"
echo " job wall time = systemctl start of the server's units, CPU/RSS = restic on the client; restore on the server)"
