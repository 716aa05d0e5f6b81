#!/usr/bin/env bash
# Build the lab's QEMU VM disk from the same debootstrap rootfs as the containers (.lab/rootfs), for what a
# container cannot do: auditd (the kernel's audit socket belongs to the initial PID namespace) and real
# kernel parameters. Output (cached by a recipe stamp) in .lab/vm/:
#   base.raw  2 GiB sparse ext4 root filesystem (no partition table, no boot loader)
#   vmlinuz, initrd.img  booted directly by QEMU (-kernel/-initrd): no GRUB needed
# The packages come from the lab mirror (.lab/repo) bind-mounted into a COPY of the rootfs; nothing is
# installed on this machine and no hardening runs here (installation only, in the copy).
# Needs root, qemu-system-x86 and qemu-utils (installed here when missing), e2fsprogs >= 1.43 (mkfs -d).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lab=${REMPART_LAB_DIR:-$here/../../.lab}
lab=$(cd "$lab" && pwd)
vm=$lab/vm
packages="linux-image-amd64 initramfs-tools auditd dbus python3-apt openssh-server sudo"
# What backup_server and offline_copy install when the VM plays backup-01 (molecule/offline): unpacked here at
# native speed rather than under emulation at every converge; the roles' install tasks then find them present.
packages="$packages restic restic-rest-server openssh-client openssl cryptsetup-bin e2fsprogs udev kmod"
stamp=$(cat "$0" "$lab/rootfs.stamp" "$lab/repo/.stamp" 2>/dev/null | sha256sum | cut -c1-16)

mkdir -p "$vm"
exec 9>"$vm/.build.lock"
flock 9   # two scenarios booting VMs at once: one builds, the other waits and finds it up to date
if [ -f "$vm/base.raw" ] && [ "$(cat "$vm/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "build-vm-disk: $vm/base.raw up to date"; exit 0
fi
command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 qemu-utils >/dev/null
[ -d "$lab/rootfs" ] && [ -f "$lab/repo/Packages" ] || { echo "run lab/build-image.sh first" >&2; exit 1; }

mkdir -p "$vm"
tree=$vm/tree
cleanup() {
  for m in "$tree/srv/repo" "$tree/proc" "$tree/sys" "$tree/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  return 0
}
trap cleanup EXIT
cleanup
rm -rf "$tree"
echo "build-vm-disk: copying the rootfs"
cp -a "$lab/rootfs" "$tree"
mkdir -p "$tree/srv/repo"
mount --bind -o ro "$lab/repo" "$tree/srv/repo"
mount -t proc proc "$tree/proc"; mount -t sysfs sys "$tree/sys"; mount --bind /dev "$tree/dev"
rm -f "$tree/etc/apt/sources.list" "$tree"/etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:/srv/repo ./' > "$tree/etc/apt/sources.list.d/build.list"
printf '#!/bin/sh\nexit 101\n' > "$tree/usr/sbin/policy-rc.d"; chmod 0755 "$tree/usr/sbin/policy-rc.d"
echo "build-vm-disk: installing $packages (in the copy)"
chroot "$tree" apt-get update -q >/dev/null
chroot "$tree" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages >/dev/null
rm -f "$tree/usr/sbin/policy-rc.d" "$tree/etc/apt/sources.list.d/build.list"
chroot "$tree" apt-get clean
cleanup

# Identity, network (QEMU user networking: 10.0.2.15/24, gateway 10.0.2.2), console, SSH.
echo rempart-vm > "$tree/etc/hostname"
: > "$tree/etc/machine-id"
rm -f "$tree"/etc/ssh/ssh_host_*
cat > "$tree/etc/fstab" <<'EOF'
/dev/vda  /         ext4  defaults,errors=remount-ro  0 1
repo      /srv/repo 9p    trans=virtio,version=9p2000.L,ro,nofail,x-systemd.automount  0 0
EOF
mkdir -p "$tree/etc/systemd/network" "$tree/etc/systemd/system/ssh.service.d"
cat > "$tree/etc/systemd/network/10-qemu.network" <<'EOF'
[Match]
Name=en* eth*
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
EOF
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  > "$tree/etc/systemd/system/ssh.service.d/lab-hostkeys.conf"
chroot "$tree" systemctl enable systemd-networkd.service ssh.service serial-getty@ttyS0.service >/dev/null 2>&1
chroot "$tree" systemctl disable restic-rest-server.service >/dev/null 2>&1   # Rempart runs its own, on 127.0.0.1
chroot "$tree" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  systemd-firstboot.service >/dev/null 2>&1
install -d -m 0700 "$tree/root/.ssh"
install -m 0600 "$lab/ssh/id_ed25519.pub" "$tree/root/.ssh/authorized_keys"
echo 'deb [trusted=yes] file:/srv/repo ./' > "$tree/etc/apt/sources.list.d/lab-repo.list"

cp "$(readlink -f "$tree/vmlinuz")" "$vm/vmlinuz"
cp "$(readlink -f "$tree/initrd.img")" "$vm/initrd.img"
echo "build-vm-disk: making the ext4 image"
rm -f "$vm/base.raw"
truncate -s 2G "$vm/base.raw"
mkfs.ext4 -q -F -L rempart-vm -d "$tree" "$vm/base.raw"
rm -rf "$tree"
echo "$stamp" > "$vm/.stamp"
echo "build-vm-disk: $vm/base.raw ready ($(du -h "$vm/base.raw" | cut -f1) used)"
