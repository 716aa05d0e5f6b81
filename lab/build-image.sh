#!/usr/bin/env bash
# Build, with a cache, everything the lab boots from:
#   1. the local apt mirror (.lab/repo) holding lab/packages.txt and their dependencies,
#   2. a Debian 12 rootfs made by debootstrap, imported with `podman import` (no registry),
#   3. the systemd target image localhost/rempart-debian12 (lab/Containerfile).
# Each step is skipped when its recipe is unchanged (a sha256 stamp). Needs root and lab/host-setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${REMPART_LAB_DIR:-$here/../.lab}
mkdir -p "$state"
state=$(cd "$state" && pwd)
debian_mirror=${REMPART_DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs_packages="systemd,systemd-sysv,dbus,python3,python3-apt,openssh-server,iproute2,ca-certificates"

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

build_repo() {
  local repo=$state/repo stamp
  stamp=$(stamp_of "$here/packages.txt" "$0")
  if [ -f "$repo/.stamp" ] && [ "$(cat "$repo/.stamp")" = "$stamp" ]; then return; fi
  echo "build-image: apt mirror (lab/packages.txt changed or new)"
  mkdir -p "$repo"
  local bookworm=() trixie=()
  while read -r line; do
    line=${line%%#*}; line=${line// /}
    [ -n "$line" ] || continue
    case $line in trixie:*) trixie+=("${line#trixie:}") ;; *) bookworm+=("$line") ;; esac
  done < "$here/packages.txt"
  apt-get update -q >/dev/null
  local deps real=()
  deps=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
           --no-replaces --no-enhances "${bookworm[@]}" | grep -E '^[a-z0-9]' | sort -u)
  for package in $deps; do
    candidate=$(apt-cache policy "$package" | awk '/Candidate:/{print $2}')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ] || continue     # virtual package
    ls "$repo/${package}_"*.deb >/dev/null 2>&1 && continue
    real+=("$package")
  done
  if [ "${#real[@]}" -gt 0 ]; then (cd "$repo" && apt-get download -q "${real[@]}" >/dev/null); fi
  if [ "${#trixie[@]}" -gt 0 ]; then
    # Debian 13 packages chosen on purpose (static Go binaries): fetched with a private apt state.
    local alt=$state/apt-trixie
    mkdir -p "$alt/lists/partial" "$alt/cache/archives/partial"
    echo "deb $debian_mirror trixie main" > "$alt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$alt/sources.list" -o "Dir::Etc::SourceParts=-"
                -o "Dir::State::Lists=$alt/lists" -o "Dir::Cache=$alt/cache")
    apt-get "${opts[@]}" update -q >/dev/null
    (cd "$repo" && apt-get "${opts[@]}" download -q "${trixie[@]}" >/dev/null)
  fi
  (cd "$repo" && dpkg-scanpackages -m . /dev/null > Packages 2>/dev/null && gzip -9kf Packages)
  echo "$stamp" > "$repo/.stamp"
  echo "build-image: mirror has $(ls "$repo"/*.deb | wc -l) packages ($(du -sh "$repo" | cut -f1))"
}

build_rootfs() {
  local rootfs=$state/rootfs stamp
  stamp=$(echo "$rootfs_packages $debian_mirror" | sha256sum | cut -c1-16)
  if [ -f "$state/rootfs.stamp" ] && [ "$(cat "$state/rootfs.stamp")" = "$stamp" ]; then return; fi
  echo "build-image: debootstrap Debian 12 minbase (about 70 s)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include="$rootfs_packages" bookworm "$rootfs" "$debian_mirror" >/dev/null
  echo "$stamp" > "$state/rootfs.stamp"
  podman image rm -f localhost/rempart-debian12-base:latest >/dev/null 2>&1 || true
}

build_images() {
  local recipe
  recipe=$(stamp_of "$here/Containerfile" "$state/rootfs.stamp" "$state/repo/.stamp")
  if ! podman image exists localhost/rempart-debian12-base:latest; then
    tar -C "$state/rootfs" --exclude='./var/cache/apt/archives/*.deb' -c . |
      podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - \
        localhost/rempart-debian12-base:latest >/dev/null
  fi
  current=$(podman image inspect localhost/rempart-debian12:latest \
              --format '{{ index .Labels "rempart.recipe" }}' 2>/dev/null || true)
  if [ "$current" != "$recipe" ]; then
    echo "build-image: target image localhost/rempart-debian12 (recipe $recipe)"
    podman build -q --pull=never --label "rempart.recipe=$recipe" -v "$state/repo:/srv/localrepo:ro" \
      -t localhost/rempart-debian12:latest -f "$here/Containerfile" "$here" >/dev/null
  fi
}

ssh_key() {
  [ -f "$state/ssh/id_ed25519" ] && return
  mkdir -p -m 0700 "$state/ssh"
  ssh-keygen -q -t ed25519 -N '' -C rempart-lab-admin -f "$state/ssh/id_ed25519"
}

# Drift from the tested set (rempart/model/tested-packages.txt): reported, never refused (Debian moves versions on).
report_drift() {
  if command -v rempart >/dev/null; then
    rempart tested-set compare --mirror "$state/repo" | tee "$state/repo/drift.txt"
  fi
}

build_repo
build_rootfs
build_images
ssh_key
report_drift
echo "build-image: localhost/rempart-debian12 ready, mirror $state/repo"
