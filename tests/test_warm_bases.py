"""Warm bases through the real daemon: the first spawn of an environment
builds its base, later spawns are copy-on-write children of it that start as
if booted themselves, a changed environment gets a new base (never a stale
one), and bases survive a daemon restart and can be listed and removed."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from daemon_fixture import start_daemon, stop_daemon
from env_helpers import build_wheel, install, stdlib_venv

from forkd_jupyter.client import BadRequest, Controller, NotFound

pytestmark = pytest.mark.kvm


def spawn(c: Controller, **kw) -> tuple[dict, float]:
    t = time.perf_counter()
    [rec] = c.spawn_sandboxes(memory_limit_mib=512, **kw)
    return rec, time.perf_counter() - t


def bases_of(c: Controller, python: str) -> list[dict]:
    return [b for b in c.list_bases() if b["python"] == python]


@pytest.fixture(scope="module")
def venv():
    root = Path(tempfile.mkdtemp(prefix="forkd-bases-", dir="/var/tmp"))
    python = stdlib_venv(root / "venv")
    yield root, python
    shutil.rmtree(root, ignore_errors=True)


def test_spawns_after_the_first_are_children_of_the_base(daemon, venv):
    root, python = venv
    first, first_s = spawn(daemon, python=str(python))
    [base] = bases_of(daemon, str(python))
    assert base["memory_mib"] == 512 and base["loaded"] and base["disk_bytes"] > 0
    timings = []
    records = [first]
    for _ in range(3):
        rec, seconds = spawn(daemon, python=str(python))
        records.append(rec)
        timings.append(seconds)
    try:
        assert bases_of(daemon, str(python)) == [base | {"loaded": True}]  # no rebuild
        assert max(timings) < first_s  # children start faster than the build
        # Each starts as if booted: no history, its own random sequence.
        draws = set()
        for rec in records[1:]:
            got = daemon.run_cell(rec["id"], "import random, sys\nprint(random.random(), len(In))")
            draw, history = got.stdout.split()
            draws.add(draw)
            assert got.execution_count == 1 and history == "2"  # In[0] and this cell
        assert len(draws) == 3
    finally:
        for rec in records:
            daemon.kill_sandbox(rec["id"])


def test_a_changed_environment_gets_a_new_base(daemon, venv):
    root, python = venv
    rec, _ = spawn(daemon, python=str(python))
    daemon.kill_sandbox(rec["id"])
    [before] = bases_of(daemon, str(python))
    install(python, build_wheel(root, "fjprobe_new", "installed-later"))
    rec, _ = spawn(daemon, python=str(python))
    try:
        got = daemon.run_cell(rec["id"], "import fjprobe_new; print(fjprobe_new.VALUE)")
        assert got.stdout.strip() == "installed-later"
        [after] = bases_of(daemon, str(python))
        assert after["id"] != before["id"]  # the stale base is gone, not kept alongside
    finally:
        daemon.kill_sandbox(rec["id"])


def test_preloaded_modules_are_in_the_base_not_in_the_history(daemon):
    rec, _ = spawn(daemon, preload=["json", "xml.dom"])
    try:
        got = daemon.run_cell(rec["id"], "import sys\nprint('xml.dom' in sys.modules, len(In))")
        assert got.stdout.split() == ["True", "2"]
        assert any(b["preload"] == ["json", "xml.dom"] for b in daemon.list_bases())
    finally:
        daemon.kill_sandbox(rec["id"])
    with pytest.raises(BadRequest) as e:
        daemon.spawn_sandboxes(preload=["no such module"])
    assert e.value.problem.get("field") == "preload"
    with pytest.raises(BadRequest) as e:
        daemon.spawn_sandboxes(memory_limit_mib=512, preload=["fjprobe_not_installed"])
    assert "ModuleNotFoundError" in e.value.detail


def test_children_start_with_the_first_cell_and_error_paths_warm_and_no_trace_of_it(daemon):
    # What a first error loads in a sandbox booted cold.
    from forkd_jupyter.vmm import Sandbox

    modules = "import sys; sorted(sys.modules)"
    with Sandbox.spawn(memory_mib=512) as cold:
        before = set(eval(cold.run(modules).result["text/plain"]))
        cold.run("1 / 0")
        loaded_by_an_error = set(eval(cold.run(modules).result["text/plain"])) - before
    assert loaded_by_an_error  # else this test shows nothing
    rec, _ = spawn(daemon)
    try:
        probe = (
            "import sys\n"
            "print(sorted(n for n in dir() if n.startswith('_fj')), len(In), len(Out), "
            "hasattr(sys, 'last_value'))"
        )
        got = daemon.run_cell(rec["id"], probe)
        assert got.execution_count == 1
        # No warm-up name, history entry, output or error is left.
        assert got.stdout.split() == ["[]", "2", "0", "False"]
        # What an error sets up was done once, in the base.
        warm = set(eval(daemon.run_cell(rec["id"], modules).result["text/plain"]))
        assert loaded_by_an_error <= warm
        err = daemon.run_cell(rec["id"], "1 / 0")
        assert err.error.ename == "ZeroDivisionError" and err.execution_count == 3
        assert "1 / 0" in err.error.plain_traceback
        check = daemon.run_cell(rec["id"], "import sys; print(type(sys.last_value).__name__)")
        assert check.stdout.strip() == "ZeroDivisionError"
    finally:
        daemon.kill_sandbox(rec["id"])


def test_bases_survive_a_restart_and_can_be_removed(tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FORKD_JUPYTER_STATE_DIR", str(state))
    monkeypatch.setenv("FORKD_JUPYTER_SOCKET", str(state / "daemon.sock"))
    monkeypatch.setenv("FORKD_JUPYTER_URL", f"unix://{state / 'daemon.sock'}")
    proc = start_daemon(state)
    try:
        with Controller(autostart=False) as c:
            rec, _ = spawn(c)
            c.kill_sandbox(rec["id"])
            [base] = c.list_bases()
    finally:
        stop_daemon(proc)
    proc = start_daemon(state)
    try:
        with Controller(autostart=False) as c:
            [again] = c.list_bases()
            assert again["id"] == base["id"] and not again["loaded"]
            rec, _ = spawn(c)  # from the saved base: no new build
            assert [b["id"] for b in c.list_bases()] == [base["id"]]
            assert c.run_cell(rec["id"], "print(6 * 7)").stdout == "42\n"
            c.kill_sandbox(rec["id"])
            assert c.delete_base(base["id"])["id"] == base["id"]
            assert c.list_bases() == [] and not (state / "bases" / base["id"]).exists()
            with pytest.raises(NotFound):
                c.delete_base(base["id"])
    finally:
        stop_daemon(proc)
