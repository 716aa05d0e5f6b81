"""Rempart's library for the programs deployed on the hosts (standard library only).

Installed by the role ``program_library`` into /usr/local/lib/rempart/python/ beside the program packages; the
programs run with ``/usr/bin/python3 -I`` through ``rempart_run.py``, which puts that folder first on sys.path.
Distinct from ``rempart`` (the control node's package): nothing here imports it.
"""
