"""One writer per run directory (train/run_lock.py): a live holder is named, a dead one's lock is taken over."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from agent_lightning.errors import UserError
from agent_lightning.train.run_lock import RunLock


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    with RunLock(tmp_path):
        holder = json.loads((tmp_path / ".lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(UserError, match=rf"is in use by pid {os.getpid()} on host .*pick another --output-dir"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()  # released and removed at the end
    with RunLock(tmp_path):  # free again
        pass


def test_another_process_holding_it_blocks_and_its_death_frees_it(tmp_path, caplog):
    code = textwrap.dedent(f"""
        import os, sys, time
        from agent_lightning.train.run_lock import RunLock
        lock = RunLock({str(tmp_path)!r}).acquire()
        print("held", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()  # SIGKILL: no cleanup, the lock file stays behind
        holder.wait()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
    with caplog.at_level("WARNING"), RunLock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert f"left by pid {holder.pid}" in caplog.text and "no longer running" in caplog.text
