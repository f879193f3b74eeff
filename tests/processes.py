"""Helpers for tests that inject faults into server processes they started themselves."""

from __future__ import annotations

import os
import signal
import time


def freeze(pid: int, *, timeout: float = 5.0) -> None:
    """SIGSTOP a process and return once the kernel reports it stopped.

    SIGSTOP is asynchronous: a busy server thread may still answer one more request
    before the whole process stops, which would make "no reply comes" flaky under load.
    """
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")
