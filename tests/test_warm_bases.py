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
from daemon_fixture import own_base, start_daemon, stop_daemon, wait_for_ready_child
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
        [now] = bases_of(daemon, str(python))  # no rebuild
        ready = ("ready_children", "ready_served")
        assert {k: now[k] for k in base if k not in ready} == {
            k: v for k, v in base.items() if k not in ready
        }
        assert now["ready_served"] >= 1  # spawns after the first take the ready child
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


def test_children_find_matplotlib_font_cache_built_in_the_base(daemon):
    # The daemon's interpreter has matplotlib (a dependency of the project).
    rec, _ = spawn(daemon)
    try:
        probe = (
            "import glob, os, sys\n"
            "[f] = glob.glob('/tmp/forkd-matplotlib/fontlist-*.json')\n"
            "before = os.stat(f).st_mtime_ns\n"
            "print('matplotlib' in sys.modules)\n"
            "import matplotlib.pyplot\n"
            "fonts = matplotlib.font_manager.fontManager.ttflist\n"
            "print(os.stat(f).st_mtime_ns == before, len(fonts) > 0)"
        )
        got = daemon.run_cell(rec["id"], probe)
        assert got.error is None, got.error and got.error.plain_traceback
        # Not imported in the base's memory; the font list read, not rebuilt.
        assert got.stdout.split() == ["False", "True", "True"]
    finally:
        daemon.kill_sandbox(rec["id"])


def default_base(c: Controller) -> dict:
    """The base of spawn()'s sandboxes: the daemon's own interpreter, 512 MiB."""
    return own_base(c, 512)


def wait_ready(c: Controller) -> dict:
    return wait_for_ready_child(c, 512)


def test_a_spawn_takes_the_ready_child_which_starts_as_if_booted(daemon):
    """After a spawn the base's next child is made ahead (spawned, re-seeded,
    a cell rehearsed); the next spawn takes it, and it shows nothing of
    that: no history, output, names or execution count, and its own random
    sequence."""
    first, _ = spawn(daemon)
    daemon.kill_sandbox(first["id"])
    served = wait_ready(daemon)["ready_served"]
    records = []
    try:
        for n in (1, 2):
            rec, _ = spawn(daemon)
            records.append(rec)
            assert default_base(daemon)["ready_served"] == served + n  # it was the ready one
            probe = (
                "import sys, random\n"
                "print(sorted(k for k in dir() if k.startswith('_fj')), len(In), len(Out), "
                "repr(_), repr(_i), hasattr(sys, 'last_value'), random.random())\n"
                "6 * 7"
            )
            got = daemon.run_cell(rec["id"], probe)
            assert got.execution_count == 1 and got.result["text/plain"] == "42"
            *trace, draw = got.stdout.split()
            assert trace == ["[]", "2", "0", "''", "''", "False"]
            records[-1] = rec | {"draw": draw}
            wait_ready(daemon)
        assert records[0]["draw"] != records[1]["draw"]
    finally:
        for rec in records:
            daemon.kill_sandbox(rec["id"])


def test_back_to_back_spawns_keep_more_ready_children(daemon):
    """A spawn that finds no ready child though one was being made (spawns
    back to back) makes the base keep BURST_DEPTH of them: the next spawns
    of the burst find theirs made meanwhile."""
    from forkd_jupyter.controller.ready_children import BURST_DEPTH

    first, _ = spawn(daemon)
    records = [first]
    try:
        wait_ready(daemon)
        records += [spawn(daemon)[0], spawn(daemon)[0]]  # the second finds none ready
        deadline = time.monotonic() + 60
        while default_base(daemon)["ready_children"] < BURST_DEPTH:
            assert time.monotonic() < deadline, default_base(daemon)
            time.sleep(0.05)
        served = default_base(daemon)["ready_served"]
        records += [spawn(daemon)[0], spawn(daemon)[0]]
        assert default_base(daemon)["ready_served"] == served + 2  # both were made ahead
    finally:
        for rec in records:
            daemon.kill_sandbox(rec["id"])


def private_state(tmp_path: Path, monkeypatch) -> Path:
    """A state directory of a daemon of the test's own, and this process
    pointed at it."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FORKD_JUPYTER_STATE_DIR", str(state))
    monkeypatch.setenv("FORKD_JUPYTER_SOCKET", str(state / "daemon.sock"))
    monkeypatch.setenv("FORKD_JUPYTER_URL", f"unix://{state / 'daemon.sock'}")
    return state


def test_without_ready_children_spawns_are_children_of_the_base(tmp_path, monkeypatch):
    state = private_state(tmp_path, monkeypatch)
    monkeypatch.setenv("FORKD_JUPYTER_READY_CHILDREN", "0")
    proc = start_daemon(state)
    try:
        with Controller(autostart=False) as c:
            for _ in range(2):
                rec, _ = spawn(c)
                assert c.run_cell(rec["id"], "6 * 7").result["text/plain"] == "42"
                c.kill_sandbox(rec["id"])
            time.sleep(0.5)
            base = default_base(c)
            assert (base["ready_children"], base["ready_served"]) == (0, 0)
    finally:
        stop_daemon(proc)


def test_bases_survive_a_restart_and_can_be_removed(tmp_path, monkeypatch):
    state = private_state(tmp_path, monkeypatch)
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
