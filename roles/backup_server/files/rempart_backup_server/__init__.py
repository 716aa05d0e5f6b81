"""Rempart backup server: pull jobs, arrival ledger, anomaly check, retention by arrival, check, admin.

Installed by the Ansible role ``backup_server`` into /usr/local/lib/rempart/python/rempart_backup_server/ beside
the library ``rempart_host`` (role program_library), and run by systemd units on the backup server only (python3
of Debian 12, standard library only) as ``python3 -I /usr/local/lib/rempart/python/rempart_run.py
rempart_backup_server ACTION ...``:

  job DATASET         (rempart-backup@DATASET.service)     flow 1 + 2: pull a snapshot through SSH, record
                                                            its arrival, compare with the recent median
  retention DATASET   (rempart-retention@DATASET.service)  flow 3: forget + prune by *arrival* time,
                                                            never during a prune hold
  check DATASET       (rempart-check@DATASET.service)      flow 3: restic check (+ read data subset)
  restore-all TARGET                                        emergency restore of every dataset at once (root),
                                                            each from its newest TRUSTED snapshot (--snapshot)
  trusted DATASET                                           the newest trusted snapshot (restores, drills, copies)
  init [DATASET...]                                         create the missing repositories (the role runs it)
  hold | clear-hold | status | restic                       admin actions (root): see the role README

Every action runs inside ``rempart_host.program.run``: a crash or a non-zero exit leaves a ``program-failed``
entry in the dataset's ledger, ``rempart_program_last_run_success`` 0 and a non-zero exit status.

Modules: config (configuration, state, restic, locks), admission (the server judges what a job wrote, moves the
rest to quarantine), evidence (rows, row changes and digests the server measures itself), trust (newest trusted
snapshot), holds (prune hold), anomaly (flow 2, R21), job (flow 1),
retention and check (flow 3), admin (root actions), __main__ (command line).

Requirements: BP100-ARCH-06 (pull), BP100-OPS-10 / R21 (anomaly check after each backup),
BP100-RET-01 (retention), BP100-DATA-01/03 (integrity: manifests, check), HDS-03 (encrypted repositories).
"""
