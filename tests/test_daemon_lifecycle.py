"""The daemon as a process: where and how it listens, starting on demand,
one per user, graceful shutdown and an accurate report after a restart.
Each test runs its own daemon in its own state directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from daemon_fixture import wait_for_ready_child

from forkd_jupyter.client import Conflict, Controller, Unauthorized

pytestmark = pytest.mark.kvm


@pytest.fixture
def private_env(tmp_path, monkeypatch):
    """This process and its children point at a daemon location of their own."""
    state = tmp_path / "state"
    runtime = tmp_path / "run"
    for var in ("FORKD_JUPYTER_URL", "FORKD_JUPYTER_SOCKET", "FORKD_JUPYTER_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FORKD_JUPYTER_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield state, runtime / "forkd-jupyter" / "daemon.sock"
    info = state / "daemon.json"
    try:  # a daemon a test left running (one that is stopping removes the file)
        pid = json.loads(info.read_text())["pid"]
        os.kill(pid, 15)
    except (FileNotFoundError, ProcessLookupError):
        pass


def daemon_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "forkd_jupyter", "daemon", *args]


def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running")


def test_sdk_starts_the_daemon_on_a_private_socket(private_env):
    state, sock = private_env
    with Controller() as c:  # nothing runs yet: the SDK starts it
        health = c.health()
        assert health["status"] == "ok"
        mode = os.stat(sock).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        info = json.loads((state / "daemon.json").read_text())
        assert info["pid"] == health["pid"] and info["socket"] == str(sock)
        assert os.getsid(health["pid"]) != os.getsid(0)  # detached from this session
        with Controller() as again:  # a second client finds the same daemon
            assert again.health()["pid"] == health["pid"]
        second = subprocess.run(daemon_cmd(), capture_output=True, text=True, timeout=30)
        assert second.returncode == 3 and "already running" in second.stderr
        c.shutdown_daemon()
    wait_gone(health["pid"])
    assert not sock.exists() and not (state / "daemon.json").exists()


def test_tcp_needs_a_token_off_loopback(private_env):
    refused = subprocess.run(
        daemon_cmd("--host", "0.0.0.0", "--port", "0"), capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2 and "without a token" in refused.stderr


def test_tcp_with_a_token(private_env):
    state, _ = private_env
    proc = subprocess.Popen(daemon_cmd("--port", "0", "--token", "s3cret"))
    try:
        deadline = time.monotonic() + 30
        while not (state / "daemon.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        url = json.loads((state / "daemon.json").read_text())["tcp"]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/v1/health").status_code == 200  # health is public
        r = httpx.get(url + "/v1/sandboxes")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        wrong = httpx.get(url + "/v1/sandboxes", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        with pytest.raises(Unauthorized):
            Controller(url=url, token="wrong", autostart=False).list_sandboxes()
        with Controller(url=url, token="s3cret", autostart=False) as c:
            assert c.list_sandboxes() == []
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_restart_reports_what_died_with_the_old_daemon(private_env):
    with Controller() as c:
        pid = c.health()["pid"]
        [sb] = c.spawn_sandboxes(memory_limit_mib=256, name="before")
        lost = c.branch_sandbox(sb["id"], mode="full", tag="lost")["snapshot"]
        os.kill(pid, 15)  # graceful stop
        wait_gone(pid)
    with Controller() as c:
        assert c.health()["pid"] != pid
        old = c.get_sandbox("before")
        assert old["status"] == "dead" and old["exit_reason"] == "daemon restarted"
        snap = c.get_snapshot("lost")
        assert snap["status"] == "failed" and "not saved" in snap["error"]
        with pytest.raises(Conflict):
            c.spawn_sandboxes(snapshot_tag="lost")
        with pytest.raises(Conflict):
            c.run_cell(old["id"], "1")
        [new] = c.spawn_sandboxes(memory_limit_mib=256)
        assert new["id"] not in (sb["id"],) and lost["id"] == "snap-1"  # ids never repeat
        assert new["id"] == "sb-2"
        c.shutdown_daemon()


def test_saved_snapshots_survive_a_restart_and_spawn(private_env):
    with Controller() as c:
        pid = c.health()["pid"]
        [sb] = c.spawn_sandboxes(memory_limit_mib=256, name="saver")
        code = "kept = 'across restarts'\nopen('/sandbox/f.txt', 'w').write('on disk')"
        c.run_cell(sb["id"], code)
        snap = c.branch_sandbox(sb["id"], mode="live", tag="keep")["snapshot"]
        saved = c.save_snapshot("keep")
        assert saved["saved_path"] and Path(saved["saved_path"]).is_dir()
        c.branch_sandbox(sb["id"], mode="full", tag="unsaved")
        os.kill(pid, 15)
        wait_gone(pid)
    with Controller() as c:
        assert c.health()["pid"] != pid
        listed = {s["tag"]: s for s in c.list_snapshots()}
        assert listed["keep"]["status"] == "ready" and listed["keep"]["id"] == snap["id"]
        assert listed["unsaved"]["status"] == "failed"
        [child] = c.spawn_sandboxes(snapshot_tag="keep")
        r = c.run_cell(child["id"], "kept + ' ' + open('/sandbox/f.txt').read()")
        assert r.result["text/plain"] == "'across restarts on disk'"
        tree = c.tree()
        assert {"source": snap["id"], "target": child["id"], "kind": "spawn"} in tree["edges"]
        c.delete_snapshot("keep", cascade=True)
        assert not Path(saved["saved_path"]).exists()
        c.shutdown_daemon()


def test_sigint_stops_the_daemon_and_its_sandboxes_gracefully(private_env):
    state, sock = private_env
    with Controller() as c:
        pid = c.health()["pid"]
        c.spawn_sandboxes(memory_limit_mib=256)
        wait_for_ready_child(c, 256)
        vm_fds = [fd for fd in Path(f"/proc/{pid}/fd").iterdir() if "kvm-vm" in os.readlink(fd)]
        assert len(vm_fds) == 2  # the sandbox's VM and the ready child's live in the daemon
        os.kill(pid, 2)
        wait_gone(pid)
    assert "forkd-jupyter daemon stopped" in (state / "daemon.log").read_text()
    assert not sock.exists()
    doc = json.loads((state / "state.json").read_text())
    assert [s["status"] for s in doc["sandboxes"]] == ["running"]  # reported dead on restart
