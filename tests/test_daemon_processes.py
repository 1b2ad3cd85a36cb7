"""Programs run once in a sandbox through the real daemon: REST (checked
against the OpenAPI document), the SDK and the CLI (`forkd-jupyter exec`).
Exit codes, output, stdin, environment, cwd, timeouts that kill the whole
process group, output caps, bad requests and missing programs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.kvm

FORKD = [sys.executable, "-m", "forkd_jupyter"]


def test_rest_runs_a_program_and_reports_everything(http, sb):
    r = http.post(
        f"/sandboxes/{sb}/processes/run",
        json={
            "argv": ["sh", "-c", 'echo "$GREETING $(pwd)"; cat; echo oops >&2; exit 3'],
            "env": {"GREETING": "hello"},
            "cwd": "/tmp",
            "stdin": "from stdin\n",
        },
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["exit_code"] == 3
    assert doc["stdout"] == "hello /tmp\nfrom stdin\n"
    assert doc["stderr"] == "oops\n"
    assert not doc["timed_out"] and not doc["stdout_truncated"] and doc["duration_ms"] > 0


def test_rest_timeout_kills_the_process_group_and_output_is_capped(http, sb):
    r = http.post(
        f"/sandboxes/{sb}/processes/run",
        json={"argv": ["sh", "-c", "sleep 30 & sleep 30"], "timeout": 0.5},
    )
    doc = r.json()
    assert r.status_code == 200 and doc["timed_out"] and doc["exit_code"] == -9, doc
    assert doc["duration_ms"] < 10_000
    r = http.post(
        f"/sandboxes/{sb}/processes/run",
        json={"argv": ["sh", "-c", "yes | head -c 5000000"], "max_output_bytes": 1000},
    )
    doc = r.json()
    assert len(doc["stdout"]) == 1000 and doc["stdout_truncated"] and doc["exit_code"] == 0
    # Nothing of those programs is left: the sandbox runs cells as before.
    assert (
        http.post(f"/sandboxes/{sb}/run", json={"code": "6 * 7"}).json()["result"]["text/plain"]
        == "42"
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "argv"),
        ({"argv": []}, "argv"),
        ({"argv": "ls"}, "argv"),
        ({"argv": ["ls"], "env": {"A": 1}}, "env"),
        ({"argv": ["ls"], "timeout": -1}, "timeout"),
        ({"argv": ["ls"], "max_output_bytes": 1 << 40}, "max_output_bytes"),
        ({"argv": ["ls"], "shell": True}, "shell"),
    ],
)
def test_rest_bad_requests_are_problems(http, sb, body, field):
    r = http.post(f"/sandboxes/{sb}/processes/run", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.json()["detail"]


def test_missing_program_and_unknown_sandbox(http, sb):
    r = http.post(f"/sandboxes/{sb}/processes/run", json={"argv": ["/no/such/program"]})
    assert r.status_code == 400 and "No such file" in r.json()["detail"], r.text
    r = http.post("/sandboxes/sb-nope/processes/run", json={"argv": ["true"]})
    assert r.status_code == 404


def test_sdk_runs_a_program(daemon, sb):
    doc = daemon.run_process(sb, ["python3", "-c", "import sys; print(sys.argv)", "x"])
    assert doc["exit_code"] == 0 and doc["stdout"] == "['-c', 'x']\n"


def test_cli_exec_exit_code_output_and_json(daemon, sb):
    done = subprocess.run(
        [*FORKD, "exec", sb, "--", "sh", "-c", "echo out; echo err >&2; exit 5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (5, "out\n", "err\n")
    done = subprocess.run(
        [*FORKD, "exec", sb, "--stdin", "-e", "N=7", "--json", "--", "sh", "-c", "echo $N; cat"],
        input="piped",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stdout"] == "7\npiped"
    done = subprocess.run(
        [*FORKD, "exec", sb, "--timeout", "0.3", "--", "sleep", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 124
