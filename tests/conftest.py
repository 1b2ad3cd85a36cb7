"""Test-suite policy: tests marked `kvm` skip, with the reason, on a machine
without a usable /dev/kvm, except in CI (the CI environment variable set),
where a missing /dev/kvm stops the session and a skipped KVM test fails."""

from __future__ import annotations

import os

import pytest

# The `daemon` fixture, shared by every layer's tests; the Ray cluster's.
pytest_plugins = ["daemon_fixture", "cluster_fixture"]

HAVE_KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not HAVE_KVM:
        raise pytest.UsageError(
            "CI is set but /dev/kvm is missing or not read-write: the KVM tests cannot run "
            "(run `forkd-jupyter doctor`)"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_KVM:
        return
    skip = pytest.mark.skip(
        reason="no usable /dev/kvm on this machine (run `forkd-jupyter doctor`)"
    )
    for item in items:
        if "kvm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def sandbox():
    """One sandbox shared by a test module (spawning costs about a second)."""
    from forkd_jupyter.vmm import Sandbox

    sb = Sandbox.spawn(memory_mib=1024)
    yield sb
    sb.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and "kvm" in item.keywords:
        report.outcome = "failed"
        report.longrepr = f"KVM test skipped in CI: {report.longrepr}"
