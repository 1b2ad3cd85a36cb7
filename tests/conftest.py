"""Test-suite policy: KVM tests never silently skip in CI."""

from __future__ import annotations

import os

import pytest

HAVE_KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)
IN_CI = bool(os.environ.get("CI"))


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not HAVE_KVM:
        raise pytest.UsageError("CI machine without a usable /dev/kvm: KVM tests cannot run")


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
