"""The `forkd-jupyter` command, run as the real executable in subprocesses
against the test daemon (the `daemon` fixture exports FORKD_JUPYTER_URL, so
every subprocess talks to it)."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SOURCE_NAME = "cli-source"


def _executable() -> str:
    beside_python = Path(sys.executable).parent / "forkd-jupyter"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("forkd-jupyter")
    assert found, "the forkd-jupyter script is not installed"
    return found


FORKD = _executable()


def cli(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 180):
    return subprocess.run(
        [FORKD, *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def cli_json(*args: str, **kw):
    done = cli(*args, "--json", **kw)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    message = done.stderr.strip()
    assert "\n" not in message, message
    assert message.startswith("forkd-jupyter: "), message
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.fixture(scope="module")
def source(daemon):
    """One sandbox spawned through the CLI, shared by the module's tests."""
    records = cli_json("spawn", "--name", SOURCE_NAME, "--memory", "1024")
    assert len(records) == 1 and records[0]["name"] == SOURCE_NAME
    yield records[0]["id"]
    daemon.kill_sandbox(records[0]["id"])


# ------------------------------------------------------------- sandboxes
@pytest.mark.kvm
def test_spawned_sandbox_is_listed(source):
    listed = {r["id"]: r for r in cli_json("ls")}
    assert listed[source]["status"] == "running"
    assert listed[source]["name"] == SOURCE_NAME
    assert listed[source]["memory_limit_mib"] == 1024
    text = cli("ls").stdout
    row = next(line for line in text.splitlines() if line.startswith(source + " "))
    assert SOURCE_NAME in row and "idle" in row


@pytest.mark.kvm
def test_spawn_several_shows_a_bar_only_on_a_terminal_and_kill_takes_several(daemon):
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [FORKD, "spawn", "-n", "2", "--memory", "512"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    terminal: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, terminal))
    reader.start()
    out, _ = proc.communicate(timeout=120)
    reader.join(10)
    os.close(master)
    ids = out.split()
    assert proc.returncode == 0 and len(ids) == 2 and all(i.startswith("sb-") for i in ids)
    bar = b"".join(terminal).decode(errors="replace")
    assert "spawning" in bar and "2/2" in bar  # tqdm drew on the terminal, not on stdout
    assert "spawning" not in out

    # An unknown name among them is reported, and the others are killed anyway.
    done = cli("kill", ids[0], "nope-sandbox", ids[1], "--json")
    assert_one_line_error(done, "nope-sandbox")
    killed = json.loads(done.stdout)
    assert [r["id"] for r in killed] == ids
    assert all(r["status"] == "dead" and r["exit_reason"] == "killed" for r in killed)


def _drain(fd: int, sink: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the child closed the terminal
            return
        if not chunk:
            return
        sink.append(chunk)


# ------------------------------------------------------------------- run
@pytest.mark.kvm
def test_run_prints_output_then_result(source):
    done = cli("run", SOURCE_NAME, "print('hello'); 6 * 7")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n42\n"


@pytest.mark.kvm
def test_run_reads_code_from_stdin_and_from_a_file(source, tmp_path):
    done = cli("run", source, "-", input="y = 20\ny + 1\n")
    assert (done.returncode, done.stdout) == (0, "21\n"), done.stderr
    script = tmp_path / "cell.py"
    script.write_text("import sys\nprint('to stderr', file=sys.stderr)\ny + 2\n")
    done = cli("run", source, "--file", str(script))
    assert (done.returncode, done.stdout, done.stderr) == (0, "22\n", "to stderr\n")
    missing = cli("run", source, "--file", str(tmp_path / "absent.py"))
    assert_one_line_error(missing, "absent.py")


@pytest.mark.kvm
def test_run_streams_output_as_the_guest_writes_it(source):
    code = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')"
    proc = subprocess.Popen(
        [FORKD, "run", source, code], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    first = proc.stdout.readline()
    first_at = time.monotonic()
    rest = proc.stdout.read()
    proc.wait(60)
    ended_at = time.monotonic()
    assert (first, rest, proc.returncode) == ("first\n", "second\n", 0)
    assert ended_at - first_at > 1.0  # "first" arrived before the cell ended


@pytest.mark.kvm
def test_guest_exception_prints_the_guest_traceback_and_exits_1(source):
    done = cli("run", source, "def f():\n    return 1 / 0\nf()")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "ZeroDivisionError" in done.stderr and "division by zero" in done.stderr
    assert "return 1 / 0" in done.stderr  # the guest's source line, from the guest's traceback
    assert "forkd_jupyter" not in done.stderr  # no host-side traceback
    assert "\x1b[" not in done.stderr  # colours only on a terminal


@pytest.mark.kvm
def test_ctrl_c_interrupts_the_cell_in_the_guest(source):
    code = "import time\nprint('started', flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen(
        [FORKD, "run", source, code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout.readline() == "started\n"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 20  # not the 60 s sleep
    assert proc.returncode == 1
    assert "KeyboardInterrupt" in err and "time.sleep(60)" in err  # raised in the guest
    after = cli("run", source, "print('still usable')")
    assert (after.returncode, after.stdout) == (0, "still usable\n")


@pytest.mark.kvm
def test_run_json_is_the_result_record(source):
    ok = cli_json("run", source, "print('o'); 3 + 4")
    assert ok["stdout"] == "o\n" and ok["result"]["text/plain"] == "7" and ok["error"] is None
    done = cli("run", source, "--json", "raise KeyError('k')")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["ename"] == "KeyError"


# ---------------------------------------------------- branch, tree, rm
@pytest.mark.kvm
def test_branch_tree_snapshots_and_rm(source):
    out = cli_json("branch", source, "--mode", "live", "-n", "1", "--tag", "cli-branch")
    snap, children = out["snapshot"], out["children"]
    assert snap["mode"] == "live" and snap["status"] == "ready" and snap["tag"] == "cli-branch"
    assert snap["pause_ms"] is not None and snap["pause_ms"] >= 0
    assert len(children) == 1 and children[0]["parent_snapshot"] == snap["id"]
    assert snap["children"] == [children[0]["id"]]
    child = children[0]["id"]

    lines = cli("tree").stdout.splitlines()
    source_line = _line_naming(lines, source)
    snap_line = _line_naming(lines, snap["id"])
    child_line = _line_naming(lines, child)
    assert source_line < snap_line < child_line
    assert _indent(lines[source_line], source) < _indent(lines[snap_line], snap["id"])
    assert _indent(lines[snap_line], snap["id"]) < _indent(lines[child_line], child)
    assert "live" in lines[snap_line] and "pause" in lines[snap_line]
    assert "[ready]" in lines[snap_line] and "[idle]" in lines[child_line]
    sub = cli_json("tree", "cli-branch")
    assert {n["id"] for n in sub["nodes"]} == {snap["id"], child}

    assert snap["id"] in {s["id"] for s in cli_json("snapshots")}
    assert cli_json("snapshots", "cli-branch")["id"] == snap["id"]
    assert snap["id"] in cli("snapshots").stdout
    saved = cli_json("snapshots", "cli-branch", "--save")
    assert saved["id"] == snap["id"] and Path(saved["saved_path"]).is_dir()
    assert_one_line_error(cli("snapshots", "--save"), "--save needs the SNAPSHOT")

    refused = cli("rm", "cli-branch")
    assert_one_line_error(refused, child, "--cascade")
    assert snap["id"] in {s["id"] for s in cli_json("snapshots")}  # nothing deleted

    deleted = cli_json("rm", "--cascade", "cli-branch")["deleted"]
    assert set(deleted) == {child, snap["id"]}
    assert snap["id"] not in {s["id"] for s in cli_json("snapshots")}
    listed = {r["id"]: r for r in cli_json("ls")}
    assert listed[child]["status"] == "dead" and listed[source]["status"] == "running"


def _id_pattern(node_id: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(node_id)}(?![\w-])")


def _line_naming(lines: list[str], node_id: str) -> int:
    matches = [i for i, line in enumerate(lines) if _id_pattern(node_id).search(line)]
    assert len(matches) == 1, (node_id, lines)
    return matches[0]


def _indent(line: str, node_id: str) -> int:
    return _id_pattern(node_id).search(line).start()


# --------------------------------------------------------------- errors
def test_bad_flags_exit_2_with_argparse_messages():
    for args, fragment in [
        (("branch", "sb-1", "--mode", "sideways"), "invalid choice: 'sideways'"),
        (("spawn", "-n", "zero"), "invalid int value"),
        (("spawn", "-n", "0"), "must be at least 1"),
        (("spawn", "-n", "2", "--name", "twins"), "--name needs exactly one sandbox"),
        (("daemon", "--json"), "--json applies to"),
        (("run", "sb-1"), "exactly one"),
        (("bench", "--iterations", "0"), "must be at least 1"),
        (("daemon", "restart"), "invalid choice: 'restart'"),
        (("daemon", "status", "--port", "1"), "only for serving"),
        (("rm",), "the following arguments are required"),
    ]:
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert fragment in done.stderr and "usage:" in done.stderr, (args, done.stderr)


@pytest.mark.kvm
def test_unknown_sandbox_or_snapshot_is_a_one_line_error(daemon):
    assert_one_line_error(cli("run", "no-such-sandbox", "1"), "no-such-sandbox")
    assert_one_line_error(cli("branch", "no-such-sandbox"), "no-such-sandbox")
    assert_one_line_error(cli("rm", "no-such-snapshot"), "no-such-snapshot")
    assert_one_line_error(cli("snapshots", "no-such-snapshot"), "no-such-snapshot")


def test_unreachable_daemon_is_reported_with_a_hint():
    env = {**os.environ, "FORKD_JUPYTER_URL": "http://127.0.0.1:9"}
    done = cli("ls", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("forkd-jupyter: ") and "127.0.0.1:9" in done.stderr
    assert "hint:" in done.stderr and "Traceback" not in done.stderr
    bad = cli("ls", env={**os.environ, "FORKD_JUPYTER_URL": "ftp://x"})
    assert_one_line_error(bad, "FORKD_JUPYTER_URL")


# ----------------------------------------------------------------- bench
@pytest.mark.kvm
def test_bench_prints_a_table_per_mode(daemon):
    done = cli("bench", "--mib", "16", "--iterations", "1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("MODE"))
    assert lines[header].split() == [
        "MODE",
        "RUNS",
        "PAUSE_P50",
        "PAUSE_P90",
        "ROUND_TRIP_P50",
        "ROUND_TRIP_P90",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 :]}
    assert set(rows) == {"live", "diff", "full"}
    for cells in rows.values():
        runs, pause50, pause90, trip50, trip90 = cells
        assert runs == "1"
        assert 0 <= float(pause50) <= float(pause90) <= float(trip90)
        assert float(trip50) > 0

    report = cli_json("bench", "--mib", "16", "--iterations", "1")
    assert set(report["summary"]) == {"live", "diff", "full"}
    assert [s["mode"] for s in report["samples"]] == ["live", "diff", "full"]
    assert all(s["status"] == "ready" for s in report["samples"])
    full = next(s for s in report["samples"] if s["mode"] == "full")
    assert full["physical_bytes"] >= 16 << 20  # the full image holds the written buffer
    listed = {r["id"]: r for r in cli_json("ls")}
    assert listed[report["source"]]["status"] == "dead"  # the bench cleans up after itself
    assert not any(s["source_id"] == report["source"] for s in cli_json("snapshots"))


@pytest.mark.kvm
def test_bench_all_measures_every_scenario_and_writes_the_readme_block(daemon, tmp_path):
    running_before = {r["id"] for r in cli_json("ls") if r["status"] == "running"}
    snapshots_before = {s["id"] for s in cli_json("snapshots")}
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench --all: start -->\nold\n<!-- bench --all: end -->\nrest\n")
    report = cli_json("bench", "--all", "--mib", "16", "-n", "1", "--readme", str(readme))
    rows = {r["scenario"]: r for r in report["rows"]}
    assert len(rows) == 7, rows
    for row in rows.values():
        assert row["sandbox_ms"] > 0 and row["reference_ms"] > 0, row
        assert row["ratio"] == pytest.approx(row["sandbox_ms"] / row["reference_ms"])
    assert rows["clock read (time.monotonic)"]["sandbox_ms"] < 0.01  # the vDSO: no exit
    assert report["machine"]["cores"] >= 1 and report["machine"]["date"]
    text = readme.read_text()
    assert text.startswith("intro\n<!-- bench --all: start -->\n`forkd-jupyter bench --all`")
    assert "old" not in text and text.endswith("<!-- bench --all: end -->\nrest\n")
    assert "| spawn -> first cell (warm base, spawns 0.5 s apart) |" in text
    # The bench leaves nothing running and no snapshot behind.
    assert {r["id"] for r in cli_json("ls") if r["status"] == "running"} == running_before
    assert {s["id"] for s in cli_json("snapshots")} == snapshots_before
    usage = cli("bench", "--readme", str(readme))
    assert usage.returncode == 2 and "--readme goes with --all" in usage.stderr


# ---------------------------------------------------------------- daemon
@pytest.mark.kvm
def test_daemon_status_of_the_running_daemon(daemon):
    status = cli_json("daemon", "status")
    assert status["running"] is True and status["pid"] == daemon.health()["pid"]
    done = cli("daemon", "status")
    assert done.returncode == 0 and f"pid {status['pid']}" in done.stdout


@pytest.mark.kvm
def test_daemon_stop_and_start_on_demand(daemon, tmp_path):
    """A daemon of its own (another state directory): the shared one stays up."""
    sock = tmp_path / "d.sock"
    env = {
        **os.environ,
        "FORKD_JUPYTER_STATE_DIR": str(tmp_path / "state"),
        "FORKD_JUPYTER_SOCKET": str(sock),
        "FORKD_JUPYTER_URL": f"unix://{sock}",
    }
    stopped = cli("daemon", "status", env=env)
    assert stopped.returncode == 3 and "not running" in stopped.stdout
    pid = None
    try:
        assert cli_json("ls", env=env) == []  # started on demand
        status = cli_json("daemon", "status", env=env)
        pid = status["pid"]
        assert status["running"] is True and pid != daemon.health()["pid"]
        done = cli("daemon", "stop", env=env)
        assert done.returncode == 0 and f"stopped (pid {pid})" in done.stdout
        assert not _alive(pid)
        assert cli("daemon", "status", env=env).returncode == 3
        again = cli_json("daemon", "stop", env=env)
        assert again == {"stopped": False, "running": False, "url": f"unix://{sock}"}
        assert cli_json("daemon", "status")["running"] is True  # the shared daemon is untouched
    finally:
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_ls_clears_dead_sandboxes(daemon):
    [doomed] = daemon.spawn_sandboxes(n=1, memory_limit_mib=256)
    daemon.kill_sandbox(doomed["id"])
    [alive] = daemon.spawn_sandboxes(n=1, memory_limit_mib=256)
    try:
        done = cli("ls", "--clear-dead", "--json")
        assert done.returncode == 0, done.stderr
        assert re.match(r"cleared \d+ dead sandbox", done.stderr)
        listed = {r["id"]: r for r in json.loads(done.stdout)}
        assert doomed["id"] not in listed and alive["id"] in listed
        assert not [r for r in listed.values() if r["status"] == "dead"]
    finally:
        daemon.kill_sandbox(alive["id"])
