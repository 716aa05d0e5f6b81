"""The lab's stand-in for the hospital's SMTP relay: accepts every message and stores it as a file (test fixture,
copied into a lab container by test_5_supervision.py; Python 3.11's smtpd, Debian 12's python3).

    python3 smtp_sink.py ADDRESS PORT FOLDER
"""

from __future__ import annotations

import asyncore
import os
import sys
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import smtpd  # noqa: E402  (deprecated, still in 3.11: the lab's python3)

address, port, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(folder, exist_ok=True)


class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):  # type: ignore[no-untyped-def]
        path = os.path.join(folder, f"{time.time_ns()}.eml")
        with open(path + ".tmp", "wb") as out:
            out.write(data if isinstance(data, bytes) else data.encode())
        os.replace(path + ".tmp", path)


Sink((address, port), None, decode_data=False)
asyncore.loop()
