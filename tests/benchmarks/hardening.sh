#!/usr/bin/env bash
# Benchmark of roles/hardening against ANSSI-BP-028 (a script, not a timed test): see roles/hardening/README.md.
#
# One run, on four fresh server-like lab containers from the same image (kernel, GRUB, SSH, sudo, auditd):
#   untouched | ComplianceAsCode's own Debian 12 anssi_bp28_enhanced playbook (as root via podman exec) |
#   Rempart hardening intermediary | Rempart hardening enhanced
# scored with OpenSCAP >= 1.4 + ssg-debian >= 0.1.76 (Debian trixie, in a small chroot this script builds),
# profiles anssi_bp28_minimal/intermediary/enhanced, offline on a copy of each target's root filesystem;
# plus the Lynis hardening index (inside the running target), converge times and the second run's changes.
# Prints one table, writes reports/benchmarks/hardening.json (+ XCCDF results).
#
# Safety: remediation only ever runs against unprivileged containers (Rempart over SSH, ComplianceAsCode
# through `podman exec`), never through a chroot. The trixie chroot only runs the read-only scanner against
# a copied tree.
#
# Env: REMPART_BENCH_SKIP_CAC=1 skips (b) (its first pass takes ~25 min on this machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
state=${REMPART_LAB_DIR:-$project/.lab}/bench
out=${REMPART_BENCH_OUT:-$project/reports/benchmarks}
inventory=$here/hardening_inventory
chroot_dir=$state/oscap-trixie
debian_mirror=${REMPART_DEBIAN_MIRROR:-http://deb.debian.org/debian}
bin=$project/.venv/bin
export PATH=$bin:$PATH ANSIBLE_ROLES_PATH=$project/roles ANSIBLE_COLLECTIONS_PATH=$project/collections
export ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=False
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default
mkdir -p "$state" "$out"
profiles="minimal intermediary enhanced"
ds=/usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml
cac_playbook=$chroot_dir/usr/share/scap-security-guide/ansible/debian12-playbook-anssi_bp28_enhanced.yml

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

scanner_chroot() {
  # OpenSCAP 1.4 + ssg-debian 0.1.76 from trixie (bookworm's 1.3.7 fails offline dpkg probes and its
  # ssg 0.1.65 has no Debian 12 content). Built once, then reused.
  if [ -x "$chroot_dir/usr/bin/oscap" ] && [ -f "$chroot_dir$ds" ]; then return; fi
  log "building the scanner chroot (debootstrap trixie: openscap-scanner, ssg-debian)"
  rm -rf "$chroot_dir"
  debootstrap --variant=minbase --include=openscap-scanner,openscap-utils,ssg-debian trixie "$chroot_dir" \
    "$debian_mirror" >/dev/null
}

recap_sum() {  # KEY LOG: sum of KEY= (changed, failed, unreachable) over the PLAY RECAP lines of an ansible log
  awk -v key="$1" '/ changed=/{for(i=1;i<=NF;i++) if(index($i, key "=")==1){split($i,a,"="); s+=a[2]}}
                   END{print s+0}' "$2"
}

recap_failed() {  # failed + unreachable: a row whose first run did not complete is not a valid score
  echo $(( $(recap_sum failed "$1") + $(recap_sum unreachable "$1") ))
}

timed_playbook() {  # LABEL LOG ARGS... ; prints elapsed seconds
  local label=$1 logfile=$2; shift 2
  local start end
  start=$(date +%s)
  if ! ansible-playbook -i "$inventory" "$@" >"$logfile" 2>&1; then
    log "$label failed (see $logfile)"; tail -20 "$logfile" >&2
  fi
  end=$(date +%s)
  echo $((end - start))
}

scan() {  # CONTAINER TARGET_LABEL -> writes $out/<label>-<profile>.xml, echoes JSON scores
  local container=$1 label=$2 tree=$state/tree-$1 mnt=$chroot_dir/mnt/target
  rm -rf "$tree"; mkdir -p "$tree"
  podman export "$container" | tar -C "$tree" -xf - --exclude='./dev/*' 2>/dev/null || true
  # /proc/sys as this system's kernel would hold it after boot: the running kernel's values (as seen in
  # the target's namespaces) overlaid with the target's sysctl.d files in systemd-sysctl order.
  podman exec "$container" sysctl -a 2>/dev/null >"$state/sysctl-$container.txt" || true
  python3 "$here/hardening_report.py" procsys "$tree" "$state/sysctl-$container.txt"
  mkdir -p "$mnt"
  mountpoint -q "$mnt" && umount "$mnt"
  mount --bind -o ro "$tree" "$mnt"
  mountpoint -q "$chroot_dir/proc" || mount -t proc proc "$chroot_dir/proc"
  local json="{" sep=""
  for profile in $profiles; do
    chroot "$chroot_dir" env OSCAP_PROBE_ROOT=/mnt/target oscap xccdf eval \
      --profile "xccdf_org.ssgproject.content_profile_anssi_bp28_$profile" \
      --results "/tmp/$label-$profile.xml" "$ds" >/dev/null 2>&1 || true
    cp "$chroot_dir/tmp/$label-$profile.xml" "$out/$label-$profile.xml"
    json+="$sep\"$profile\": $(python3 "$here/hardening_report.py" counts "$out/$label-$profile.xml")"; sep=", "
  done
  umount "$mnt"; umount "$chroot_dir/proc"
  rm -rf "$tree"
  echo "$json}"
}

lynis_index() {
  podman exec "$1" lynis audit system --quick --no-colors >/dev/null 2>&1 || true
  podman exec "$1" sh -c "sed -n 's/^hardening_index=//p' /var/log/lynis-report.dat" 2>/dev/null || echo null
}

scanner_chroot
bash "$project/lab/build-image.sh" >/dev/null
log "starting 4 fresh targets"
rempart-lab down --inventory "$inventory" >/dev/null 2>&1 || true
rempart-lab up --inventory "$inventory" >/dev/null
trap 'rempart-lab down --inventory "$inventory" >/dev/null 2>&1 || true' EXIT

log "preparing server-like targets (kernel, GRUB, SSH, sudo, auditd, Lynis)"
timed_playbook prepare "$out/prepare.log" "$here/hardening_prepare.yml" >/dev/null

declare -A converge second failed ignored
cac_second=""
if [ "${REMPART_BENCH_SKIP_CAC:-0}" != 1 ]; then
  log "ComplianceAsCode anssi_bp28_enhanced playbook (first pass: long)"
  # As root through `podman exec` into the unprivileged container: the playbook cuts every other way in
  # (sudo mode 4110, noexec/requiretty/NOPASSWD removal in sudoers, no root SSH login); over SSH it stopped
  # at its 18th task and the row scored a nearly untouched target. A play stops a host at its first failed
  # task, and a container refuses a few of them (update-grub cannot probe the overlay root, aideinit lacks
  # CAP_DAC_READ_SEARCH): the benchmark runs a copy of the playbook with play-level `ignore_errors`, so
  # every other remediation still runs; the ignored tasks are counted in the table.
  sed 's/^  hosts: all$/  hosts: all\n  ignore_errors: true/' "$cac_playbook" > "$state/cac-playbook.yml"
  cac_args=(-l bench-cac -c containers.podman.podman
            -e ansible_host=bench-cac -e ansible_user=root -e ansible_become=false)
  converge[cac]=$(timed_playbook cac "$out/cac-1.log" "$state/cac-playbook.yml" "${cac_args[@]}")
  failed[cac]=$(recap_failed "$out/cac-1.log")
  ignored[cac]=$(recap_sum ignored "$out/cac-1.log")
  # Its second pass (as long as the first, only its changed count is reported) runs beside Rempart's runs.
  timed_playbook cac-2 "$out/cac-2.log" "$state/cac-playbook.yml" "${cac_args[@]}" >/dev/null &
  cac_second=$!
fi

admin=(-e ansible_user=rempart-admin -e ansible_become=true)
for level in intermediary enhanced; do
  log "Rempart hardening $level"
  converge[$level]=$(timed_playbook "rempart-$level" "$out/rempart-$level-1.log" "$here/hardening_rempart.yml" \
                      -l "bench-$level" "${admin[@]}")
  failed[$level]=$(recap_failed "$out/rempart-$level-1.log")
  ignored[$level]=$(recap_sum ignored "$out/rempart-$level-1.log")
  timed_playbook "rempart-$level-2" "$out/rempart-$level-2.log" "$here/hardening_rempart.yml" -l "bench-$level" \
    "${admin[@]}" >/dev/null
  second[$level]=$(recap_sum changed "$out/rempart-$level-2.log")
done

if [ -n "$cac_second" ]; then
  log "waiting for ComplianceAsCode's second pass"
  wait "$cac_second"
  second[cac]=$(recap_sum changed "$out/cac-2.log")
fi

log "scanning (OpenSCAP offline) and Lynis"
{
  echo '{"scanner": "'"$(chroot "$chroot_dir" oscap --version | head -1)"'",'
  echo ' "content": "ssg-debian '"$(chroot "$chroot_dir" dpkg-query -W -f '${Version}' ssg-debian)"'",'
  echo ' "date": "'"$(date -u +%FT%TZ)"'", "targets": ['
  sep=""
  for spec in "bench-untouched|untouched|" "bench-cac|ComplianceAsCode enhanced|cac" \
              "bench-intermediary|Rempart intermediary|intermediary" "bench-enhanced|Rempart enhanced|enhanced"; do
    IFS='|' read -r container label key <<<"$spec"
    if [ "$key" = cac ] && [ "${REMPART_BENCH_SKIP_CAC:-0}" = 1 ]; then continue; fi
    scores=$(scan "$container" "${container#bench-}")
    lynis=$(lynis_index "$container")
    echo "$sep{\"label\": \"$label\", \"container\": \"$container\", \"scores\": $scores, \"lynis\": ${lynis:-null},"
    echo " \"converge_seconds\": ${converge[${key:-none}]:-null}, \"first_run_failed\": ${failed[${key:-none}]:-null},"
    echo " \"first_run_ignored\": ${ignored[${key:-none}]:-null},"
    echo " \"second_run_changed\": ${second[${key:-none}]:-null}}"
    sep=","
  done
  echo ']}'
} > "$out/hardening.json.tmp"
python3 -m json.tool "$out/hardening.json.tmp" > "$out/hardening.json" && rm "$out/hardening.json.tmp"
python3 "$here/hardening_report.py" table "$out/hardening.json"
log "results: $out/hardening.json (+ XCCDF results and logs in $out)"
