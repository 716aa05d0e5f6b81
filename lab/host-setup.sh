#!/usr/bin/env bash
# Prepare this Debian 12 host to run the Rempart lab: podman systemd containers (no Docker engine).
# Idempotent; run at every boot (the cgroup mount does not survive a reboot). Needs root.
# Why each step exists: lab/README.md ("Host preparation").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

host_packages=(podman crun netavark aardvark-dns conmon catatonit debootstrap dpkg-dev uidmap
               iptables nftables openssh-client zstd python3-venv)
missing=()
for package in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "host-setup: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# crun 1.8 refuses a hybrid cgroup layout while a controller is still attached to the v2 hierarchy
# ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"): bind each one to v1.
if [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
  for controller in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    mkdir -p "/sys/fs/cgroup/$controller"
    mountpoint -q "/sys/fs/cgroup/$controller" ||
      mount -t cgroup -o "rw,nosuid,nodev,noexec,relatime,$controller" cgroup "/sys/fs/cgroup/$controller"
  done
fi

# root here lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be applied, give ones that can.
install -d -m 0755 /etc/containers
if ! cmp -s "$here/containers.conf" /etc/containers/containers.conf; then
  install -m 0644 "$here/containers.conf" /etc/containers/containers.conf
fi
echo "host-setup: ready (podman $(podman --version | awk '{print $3}'))"
