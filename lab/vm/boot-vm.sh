#!/usr/bin/env bash
# boot-vm.sh up NAME PORT | down NAME — a throwaway QEMU VM from .lab/vm/base.raw (copy-on-write overlay),
# software-emulated (TCG: nested KVM hangs on this kind of machine), SSH forwarded to 127.0.0.1:PORT.
# The guest reaches nothing: user networking with restrict=on; the lab mirror is a read-only 9p share.
# REMPART_VM_HOTPLUG=1 adds a QMP socket ($run/qmp.sock) and an empty virtio-scsi bus "media" on which a test
# hot-plugs disk images (blockdev-add + device_add scsi-hd, device_del): removable media (molecule/offline).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lab=${REMPART_LAB_DIR:-$here/../../.lab}
vm=$(cd "$lab" && pwd)/vm
action=$1 name=$2
run=$vm/run/$name
case $action in
  up)
    port=$3
    "$here/build-vm-disk.sh"   # rebuilt when its recipe, the rootfs or the mirror changed; else a no-op
    if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then echo "$name already running"; exit 0; fi
    rm -rf "$run"; mkdir -p "$run"
    qemu-img create -q -f qcow2 -b "$vm/base.raw" -F raw "$run/disk.qcow2"
    hotplug=()
    [ "${REMPART_VM_HOTPLUG:-0}" != 1 ] ||
      hotplug=(-qmp "unix:$run/qmp.sock,server=on,wait=off" -device virtio-scsi-pci,id=media)
    qemu-system-x86_64 -name "$name" -machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m 768 \
      -kernel "$vm/vmlinuz" -initrd "$vm/initrd.img" \
      -append "root=/dev/vda rw console=ttyS0 audit=1 audit_backlog_limit=8192 systemd.show_status=0 quiet" \
      -drive "file=$run/disk.qcow2,if=virtio,format=qcow2" \
      -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0 \
      -virtfs "local,path=$(cd "$lab/repo" && pwd),mount_tag=repo,security_model=none,readonly=on" \
      "${hotplug[@]}" -display none -serial "file:$run/console.log" -daemonize -pidfile "$run/pid"
    deadline=$((SECONDS + ${REMPART_VM_BOOT_TIMEOUT:-300}))
    until [ "$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 4 <&3" 2>/dev/null)" = "SSH-" ]; do
      [ $SECONDS -lt $deadline ] || { echo "$name: no SSH after boot timeout" >&2; tail -20 "$run/console.log" >&2; exit 1; }
      sleep 3
    done
    echo "$name up on 127.0.0.1:$port after ${SECONDS}s"
    ;;
  down)
    if [ -f "$run/pid" ]; then kill "$(cat "$run/pid")" 2>/dev/null || true; fi
    rm -rf "$run"
    ;;
  *) echo "usage: $0 up NAME PORT | down NAME" >&2; exit 2 ;;
esac
