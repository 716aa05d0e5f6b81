"""Entry script of the Rempart programs: puts its own folder (the library rempart_host and the program packages,
installed by the role program_library) first on sys.path, then runs a program as ``__main__``: a module of that
folder by name, or a program file by its absolute path.

    /usr/bin/python3 -I /usr/local/lib/rempart/python/rempart_run.py rempart_backup_server job dpi
    /usr/bin/python3 -I /usr/local/lib/rempart/python/rempart_run.py /usr/local/lib/rempart/rempart_offline_copy.py status

``-I``: no PYTHONPATH, no user site, no current folder: the environment cannot swap a module.
"""

from __future__ import annotations

import os
import runpy
import sys

USAGE = "usage: rempart_run.py MODULE|/PATH/TO/rempart_PROGRAM.py [ARGS...] (a Rempart program)"


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    target = sys.argv[1] if len(sys.argv) > 1 else ""
    is_path = os.path.isabs(target) and target.endswith(".py")
    if not os.path.basename(target).startswith("rempart_") or (not is_path and "/" in target):
        print(USAGE, file=sys.stderr)
        raise SystemExit(64)
    sys.argv = sys.argv[1:]
    if is_path:
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
