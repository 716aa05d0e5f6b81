"""The removable medium: a disk image hot-plugged into the QEMU VM through its QMP socket (lab/vm/boot-vm.sh with
REMPART_VM_HOTPLUG=1) as a removable SCSI disk with a serial number, and unplugged again."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any


class Qmp:
    def __init__(self, path: Path) -> None:
        self.path = path

    def execute(self, command: str, **arguments: Any) -> Any:
        """One QMP command on a fresh connection (capabilities negotiated each time); raises on error."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect(str(self.path))
            stream = sock.makefile("rwb")
            json.loads(stream.readline())  # greeting
            for message in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": arguments}):
                stream.write(json.dumps(message).encode() + b"\n")
                stream.flush()
                while True:
                    reply = json.loads(stream.readline())
                    if "event" not in reply:
                        break
                if "error" in reply:
                    raise RuntimeError(f"QMP {message['execute']}: {reply['error']}")
            return reply.get("return")

    def plug(self, image: Path, device_id: str, serial: str) -> None:
        self.unplug(device_id)  # a clean slate after an interrupted run
        self.execute("blockdev-add", driver="raw", **{"node-name": f"node-{device_id}"},
                     file={"driver": "file", "filename": str(image)})  # fmt: skip
        self.execute("device_add", driver="scsi-hd", id=device_id, bus="media.0", drive=f"node-{device_id}",
                     serial=serial, removable=True)  # fmt: skip

    def unplug(self, device_id: str, timeout: float = 60) -> None:
        """Pull the medium out (what a person does once the job powered it off): the SCSI device leaves the
        bus, then the image is closed."""
        try:
            self.execute("device_del", id=device_id)
        except RuntimeError as error:
            if "not found" not in str(error):
                raise
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("blockdev-del", **{"node-name": f"node-{device_id}"})
                return
            except RuntimeError as error:
                if "Failed to find node" in str(error):
                    return
                if "in use" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
