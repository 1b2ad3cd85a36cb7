"""Snapshots saved to disk and loaded back (in this process or another)
spawn children whose state is the source's at the pause."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, SandboxError, Snapshot
from forkd_jupyter.vmm import saved as saved_auth

# Saving creates the user's snapshot key in the state directory: one of the
# module's own.
pytestmark = [pytest.mark.kvm, pytest.mark.usefixtures("own_state_dir")]

SETUP = (
    "import hashlib, numpy as np\n"
    "data = np.arange(3 << 20, dtype=np.int64)\n"
    "digest = hashlib.sha256(data.tobytes()).hexdigest()\n"
    "open('/sandbox/notes.txt', 'w').write('saved layer')\n"
    "log = open('/tmp/log.txt', 'w')\nlog.write('line1\\n')\nlog.flush()\n"
    "marker = 'from-source'"
)


@pytest.fixture(scope="module")
def source():
    sb = Sandbox.spawn(memory_mib=1024)
    run_ok(sb, SETUP)
    yield sb
    sb.close()


def _same_state(child: Sandbox, source_count: int) -> None:
    assert value(child, "marker") == "from-source"
    assert value(child, "hashlib.sha256(data.tobytes()).hexdigest() == digest") is True
    assert value(child, "open('/sandbox/notes.txt').read()") == "saved layer"
    run_ok(child, "log.write('line2\\n'); log.flush()")  # the open file came along
    assert value(child, "open('/tmp/log.txt').read()") == "line1\nline2\n"
    assert value(child, "In[1]").startswith("import hashlib")
    assert run_ok(child, "1").execution_count > source_count


@pytest.mark.parametrize("mode", ["live", "diff", "full"])
def test_save_load_spawn_keeps_the_state(source, mode, tmp_path):
    count = run_ok(source, "1").execution_count
    first = source.snapshot(mode="full")  # so that a diff has a parent to fold in
    snap = source.snapshot(mode=mode)
    snap.save(tmp_path / "saved")
    assert sorted(os.listdir(tmp_path / "saved")) == [
        "auth",
        "layer.memfs",
        "memory.img",
        "meta.json",
        "state",
    ]
    first.close(force=True)
    snap.close(force=True)
    loaded = Snapshot.load(tmp_path / "saved")
    assert loaded.status == "ready" and loaded.mode == mode and loaded.source_id == source.id
    a, b = loaded.spawn(2)
    try:
        _same_state(a, count)
        run_ok(a, "marker = 'changed in a'")
        assert value(b, "marker") == "from-source"  # children diverge
        assert value(source, "marker") == "from-source"
    finally:
        a.close()
        b.close()
        loaded.close()


LIMITS = (
    "import os, resource\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (48, 96))\n"
    "os.setpriority(os.PRIO_PROCESS, 0, 7)\n"
    "def dup_past_limit():\n"
    "    try:\n        os.dup2(0, 60)\n    except OSError as e:\n        return e.errno"
)
LIMITS_NOW = (
    "[resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0),"
    " dup_past_limit()]"
)


def test_limits_come_back_in_a_child_and_from_a_saved_snapshot(tmp_path):
    """setrlimit's and setpriority's values are the process's state, as its
    memory is: a child of the snapshot has them, and a child of the snapshot
    saved and loaded, with the descriptor limit enforced (dup2 past it:
    EBADF)."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, LIMITS)
        assert value(sb, LIMITS_NOW) == [(48, 96), 7, 9]
        snap = sb.snapshot(mode="diff")
        snap.save(tmp_path / "saved")
        loaded = Snapshot.load(tmp_path / "saved")
        for origin in (snap, loaded):
            [child] = origin.spawn()
            try:
                assert value(child, LIMITS_NOW) == [(48, 96), 7, 9]
            finally:
                child.close()
        loaded.close()
        snap.close(force=True)
    finally:
        sb.close()


def test_a_saved_snapshot_loads_in_another_process(source, tmp_path):
    snap = source.snapshot(mode="live")
    snap.save(tmp_path / "saved")
    snap.close(force=True)
    script = textwrap.dedent(f"""
        from forkd_jupyter.vmm import Snapshot
        snap = Snapshot.load({str(tmp_path / "saved")!r})
        (child,) = snap.spawn()
        r = child.run("marker + ' ' + open('/sandbox/notes.txt').read()")
        print(r.result["text/plain"])
        child.close()
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "'from-source saved layer'"


def test_damaged_or_foreign_files_are_refused(source, tmp_path):
    snap = source.snapshot(mode="full")
    saved = tmp_path / "saved"
    snap.save(saved)
    snap.close(force=True)
    state = (saved / "state").read_bytes()
    damages = [
        lambda: (saved / "state").write_bytes(
            state[:100] + bytes([state[100] ^ 0xFF]) + state[101:]
        ),
        lambda: (saved / "state").write_bytes(state[:-10]),
        lambda: os.truncate(saved / "memory.img", 4096),
    ]
    for damage in damages:
        damage()
        # Changed after the save: refused before anything is parsed.
        with pytest.raises(SandboxError, match="failed authentication"):
            Snapshot.load(saved)
        # Even with a valid signature (the user's own edit), the core's own
        # checks (CRC, lengths, sizes) refuse it.
        saved_auth.sign(str(saved))
        with pytest.raises(SandboxError, match="load snapshot"):
            Snapshot.load(saved)
        (saved / "state").write_bytes(state)
    with pytest.raises(SandboxError, match="not a saved snapshot"):
        Snapshot.load(tmp_path / "nothing-here")
    assert run_ok(source, "marker").result["text/plain"] == "'from-source'"  # source untouched
