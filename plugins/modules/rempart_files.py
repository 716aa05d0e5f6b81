#!/usr/bin/python3
"""Ansible module: a set of files and folders with their content, owner, group and mode, in one module run.

A loop of ``template``/``copy``/``file`` tasks costs two module runs per item (stat, then file attributes) even
when nothing changes; a backup server with 8 datasets has ~50 such items, and on a 2-core control node the
second converge of a GHT is dominated by them (tests/benchmarks/converge.sh). This module compares everything in
one run and writes only what differs, each file atomically (temporary file in the same folder, then rename).
"""

from __future__ import annotations

import difflib
import glob
import grp
import hashlib
import os
import pwd
import shlex
import tempfile
from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule

Validator = Callable[[str], None]

DOCUMENTATION = r"""
module: rempart_files
short_description: Folders and files with exact content, owner, group and mode, in one module run
description:
  - Each entry of I(files) is a folder (C(state=directory)) or a regular file with I(content) (C(state=file)).
  - I(absent) removes the files matching its paths or glob patterns, except the paths I(files) declares, so "this
    file and no other in this folder" is one call.
  - Entries are applied in order, so a folder listed before its files is created first. The missing parents of a
    folder are created root:root 0755 whatever the umask (a hardened umask of 027 would lock service users out).
  - A file with I(validate) is written to a temporary file in the same folder, checked by that command (C(%s) is
    the temporary file's path), and replaces the live file only when the command succeeds.
  - Supports check mode and diff mode. With C(--diff), each created, changed or removed path is reported; a file's
    content changes are shown as a unified diff unless its entry says C(diff=false) (secret content; only the path,
    owner, group and mode are reported). I(content) itself is never returned as a value (it may hold secrets).
options:
  files:
    description: What to ensure.
    type: list
    elements: dict
    required: true
    suboptions:
      path: {description: Absolute path., type: str, required: true}
      state: {description: Folder or file., type: str, choices: [file, directory], default: file}
      content: {description: Exact file content (state=file)., type: str}
      owner: {description: Owner name., type: str, default: root}
      group: {description: Group name., type: str, default: root}
      mode: {description: Octal mode as a string such as "0640"., type: str, required: true}
      validate: {description: Command that must accept the new content before it is installed (state=file)., type: str}
      diff: {description: Show content changes in diff mode; false for secret content., type: bool, default: true}
  absent:
    description: Files to remove (absolute paths or glob patterns), applied after I(files); folders are refused.
    type: list
    elements: str
    default: []
author: Rempart
"""

RETURN = r"""
changed_paths:
  description: The paths created, changed (content, owner, group or mode) or removed.
  type: list
  elements: str
  returned: always
"""


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _digest(path: str) -> str | None:
    data = _read(path)
    return None if data is None else hashlib.sha256(data).hexdigest()


def _attributes_differ(path: str, uid: int, gid: int, mode: int) -> bool:
    info = os.lstat(path)
    return (info.st_uid, info.st_gid, info.st_mode & 0o7777) != (uid, gid, mode)


def _write(path: str, data: bytes, uid: int, gid: int, mode: int, validate: Validator | None) -> None:
    folder = os.path.dirname(path)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chown(temporary, uid, gid)
        os.chmod(temporary, mode)
        if validate is not None:
            validate(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _make_parents(folder: str) -> None:
    """Create the missing parents root:root 0755 whatever the umask (a hardened umask of 027 would otherwise make
    /var/lib/<parent> untraversable by the service users whose folders sit below it)."""
    if os.path.isdir(folder):
        return
    _make_parents(os.path.dirname(folder))
    os.mkdir(folder)
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o755)


def remove(pattern: str, declared: set[str], check_mode: bool) -> list[str]:
    """Remove the files matching a path or glob pattern, except the declared ones; the removed paths."""
    removed = []
    for path in sorted(glob.glob(pattern)):
        if path in declared:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            raise ValueError(f"{path} is a folder (absent removes files only)")
        if not check_mode:
            os.unlink(path)
        removed.append(path)
    return removed


def _attributes(uid: int, gid: int, mode: int) -> str:
    return f"{pwd.getpwuid(uid).pw_name}:{grp.getgrgid(gid).gr_name} {mode:04o}"


def _current_attributes(path: str) -> str:
    info = os.lstat(path)
    return _attributes(info.st_uid, info.st_gid, info.st_mode & 0o7777)


def _text(data: bytes) -> list[str] | None:
    try:
        return data.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def content_diff(path: str, old: bytes | None, new: bytes) -> str:
    """A unified diff of a file's content (or a line saying it is not text)."""
    before, after = _text(old or b""), _text(new)
    if before is None or after is None:
        return f"binary content of {path} {'changed' if old is not None else 'created'}\n"
    header = "/dev/null" if old is None else f"{path} (before)"
    lines = difflib.unified_diff(before, after, header, f"{path} (after)")
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def apply(entry: dict, check_mode: bool, validate: Validator | None) -> str | None:
    """Ensure one file or folder; what changed (or would change, in check mode) as diff text, None when nothing."""
    path, state = entry["path"], entry["state"]
    mode = int(entry["mode"], 8)
    try:
        uid, gid = pwd.getpwnam(entry["owner"]).pw_uid, grp.getgrnam(entry["group"]).gr_gid
    except KeyError:
        if not check_mode:
            raise
        # check mode: the user or group is created by a task that check mode did not run
        return (
            f"{path}: {state} for {entry['owner']}:{entry['group']} {entry['mode']} (owner not created yet)\n"
        )
    wanted = _attributes(uid, gid, mode)
    if state == "directory":
        if os.path.isdir(path) and not os.path.islink(path):
            if not _attributes_differ(path, uid, gid, mode):
                return None
            note = f"{path}/: {_current_attributes(path)} -> {wanted}\n"
        else:
            note = f"{path}/: directory created {wanted}\n"
            if not check_mode:
                _make_parents(os.path.dirname(path))
                os.mkdir(path)
        if not check_mode:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return note
    data = (entry["content"] or "").encode()
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        raise ValueError(f"{path} exists and is not a regular file")
    same = _digest(path) == hashlib.sha256(data).hexdigest()
    if same and not _attributes_differ(path, uid, gid, mode):
        return None
    exists = os.path.exists(path)
    note = (
        f"{path}: {_current_attributes(path)} -> {wanted}\n" if exists else f"{path}: file created {wanted}\n"
    )
    if not same:
        if not entry["diff"]:
            note += f"{path}: content changed (not shown: secret)\n"
        else:
            note += content_diff(path, _read(path), data)
    if not check_mode:
        if same:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        else:
            _write(path, data, uid, gid, mode, validate)
    return note


def validator(module: AnsibleModule, command: str | None) -> Validator | None:
    """A function that runs the entry's validate command on a temporary file and raises when it refuses it."""
    if command is None:
        return None

    def run(path: str) -> None:
        rc, out, err = module.run_command(shlex.split(command.replace("%s", shlex.quote(path))))
        if rc != 0:
            raise ValueError(f"refused by {command!r}: {(err or out).strip()}")

    return run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "str", "required": True},
                    "state": {"type": "str", "choices": ["file", "directory"], "default": "file"},
                    "content": {"type": "str", "no_log": True},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                    "mode": {"type": "str", "required": True},
                    "validate": {"type": "str"},
                    "diff": {"type": "bool", "default": True},
                },
                "required_if": [("state", "file", ("content",))],
            },
            "absent": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    entries = module.params["files"]
    changed: list[str] = []
    for path in [entry["path"] for entry in entries] + module.params["absent"]:
        if not os.path.isabs(path):
            module.fail_json(msg=f"files: {path!r} is not an absolute path")
    for command in [entry["validate"] for entry in entries if entry["validate"] is not None]:
        if "%s" not in command:
            module.fail_json(msg=f"files: validate {command!r} must contain %s (the file to check)")
    notes: list[str] = []
    for entry in entries:
        try:
            note = apply(entry, module.check_mode, validator(module, entry["validate"]))
        except (OSError, KeyError, ValueError) as error:
            module.fail_json(msg=f"files: {entry['path']}: {error}", changed_paths=changed)
        if note is not None:
            changed.append(entry["path"])
            notes.append(note)
    declared = {entry["path"] for entry in entries}
    for pattern in module.params["absent"]:
        try:
            removed = remove(pattern, declared, module.check_mode)
        except (OSError, ValueError) as error:
            module.fail_json(msg=f"absent: {pattern}: {error}", changed_paths=changed)
        changed += removed
        notes += [f"{path}: removed\n" for path in removed]
    result: dict = {"changed": bool(changed), "changed_paths": changed}
    if module._diff and notes:
        # a prepared text, not before/after: those would hold whole file contents, which Ansible masks as no_log
        result["diff"] = {"prepared": "".join(notes)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
