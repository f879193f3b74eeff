"""Every process the bench starts is stopped with everything it spawned."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.processes import ManagedProcess, pinned


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its new parent to reap it is gone as far as we care.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_ends_the_child_and_what_it_spawned(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    process = ManagedProcess.start(["sh", "-c", script], env=dict(os.environ), name="sh")
    try:
        deadline = time.monotonic() + 5
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the child never started its own child"
            time.sleep(0.05)
        grandchild = int(pid_file.read_text())
        # Positive control: both run before stop().
        assert _alive(process.pid) and _alive(grandchild)
        assert not process.exited
    finally:
        process.stop(grace_seconds=5)
    assert process.exited
    assert _wait_gone(grandchild)


def test_stop_after_the_process_ended_is_harmless() -> None:
    process = ManagedProcess.start(["true"], env=dict(os.environ), name="true")
    stdout, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and stdout == ""
    process.stop()
    process.stop()
    assert process.exited


def test_pinning_prefixes_taskset_only_when_asked() -> None:
    assert pinned(["wrk", "url"], None) == ["wrk", "url"]
    assert pinned(["wrk", "url"], 1) == ["taskset", "-c", "1", "wrk", "url"]
