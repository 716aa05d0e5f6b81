"""Entry script of the Rempart programs: puts its own folder (the library and the program packages, installed by
the role program_library) first on sys.path, then runs a program module as ``__main__``.

    /usr/bin/python3 -I /usr/local/lib/rempart/python/rempart_run.py MODULE [ARGS...]

``-I``: no PYTHONPATH, no user site, no current folder: the environment cannot swap a module.
"""

from __future__ import annotations

import os
import runpy
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    if len(sys.argv) < 2 or not sys.argv[1].startswith(("rempart_", "rempart-")):
        print("usage: rempart_run.py MODULE [ARGS...] (a Rempart program module)", file=sys.stderr)
        raise SystemExit(64)
    module = sys.argv.pop(1)
    sys.argv[0] = module
    runpy.run_module(module, run_name="__main__", alter_sys=True)
