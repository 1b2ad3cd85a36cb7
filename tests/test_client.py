"""The SDK's own behaviour: where it connects, and the errors it raises
when there is nothing to talk to."""

from __future__ import annotations

import typing

import pytest

import forkd_jupyter
from forkd_jupyter.client import Controller, DaemonUnavailable, ForkdError, NotFound, resolve


def test_branch_mode_is_exported_from_the_package_root():
    assert typing.get_args(forkd_jupyter.BranchMode) == ("full", "diff", "live")


def test_connection_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FORKD_JUPYTER_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("FORKD_JUPYTER_TOKEN", "tok")
    conn = resolve()
    assert conn.base_url == "http://127.0.0.1:9" and conn.socket is None
    assert conn.headers() == {"Authorization": "Bearer tok"}
    monkeypatch.setenv("FORKD_JUPYTER_URL", f"unix://{tmp_path}/d.sock")
    assert resolve().socket == f"{tmp_path}/d.sock"
    monkeypatch.setenv("FORKD_JUPYTER_URL", "ftp://nowhere")
    with pytest.raises(ValueError, match="FORKD_JUPYTER_URL"):
        resolve()


def test_a_tcp_daemon_that_is_not_there_is_not_started(monkeypatch):
    monkeypatch.setenv("FORKD_JUPYTER_URL", "http://127.0.0.1:9")
    with pytest.raises(DaemonUnavailable) as e:
        Controller()
    assert "127.0.0.1:9" in e.value.detail and isinstance(e.value, ForkdError)
    c = Controller(autostart=False)
    with pytest.raises(DaemonUnavailable):
        c.list_sandboxes()


@pytest.mark.kvm
def test_errors_carry_the_problem_document(daemon):
    with pytest.raises(NotFound) as e:
        daemon.get_sandbox("no-such-sandbox")
    assert e.value.status == 404 and e.value.problem["type"].endswith(":not-found")
    assert "no-such-sandbox" in e.value.detail
