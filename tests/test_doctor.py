"""The doctor's probes agree with independent checks made here against the
real kernel, and its exit status follows the required checks."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import subprocess
import sys

import pytest

from forkd_jupyter.doctor import run_checks
from forkd_jupyter.doctor.report import all_required_ok

KVM_GET_API_VERSION = 0xAE00
UFFDIO_API = 0xC018AA3F
SYS_USERFAULTFD = 323


def doctor_json() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "forkd_jupyter", "doctor", "--json"], capture_output=True, text=True
    )
    doc = json.loads(out.stdout)
    doc["returncode"] = out.returncode
    return doc


@pytest.fixture(scope="module")
def report():
    return doctor_json()


@pytest.mark.kvm
def test_kvm_api_version_matches_the_device(report):
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    finally:
        os.close(fd)
    assert report["checks"]["kvm"]["data"]["api_version"] == version == 12
    assert report["checks"]["kvm"]["status"] == "ok"
    loop = report["checks"]["guest_user_mode"]["data"]
    assert loop["user_loop_iterations"] > 0 and loop["user_loop_seconds"] > 0


def test_userfaultfd_features_match_the_kernel(report):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(SYS_USERFAULTFD, os.O_CLOEXEC)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    api = (ctypes.c_uint64 * 3)(0xAA, 0, 0)  # struct uffdio_api {api, features, ioctls}
    try:
        assert fcntl.ioctl(fd, UFFDIO_API, api) == 0
    finally:
        os.close(fd)
    from forkd_jupyter.vmm.probes import UFFD_FEATURES

    expected = sorted(name for bit, name in UFFD_FEATURES.items() if api[1] >> bit & 1)
    assert report["checks"]["userfaultfd"]["data"]["features"] == expected
    wp_shmem = "WP_HUGETLBFS_SHMEM" in expected
    assert (report["checks"]["uffd_wp_shmem"]["status"] == "ok") == wp_shmem


def test_memfd_thp_and_hugetlb_match_the_host(report):
    fd = os.memfd_create("doctor-test")
    os.close(fd)
    assert report["checks"]["memfd"]["status"] == "ok"
    with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
        assert report["checks"]["shmem_thp"]["data"]["shmem_enabled"] == f.read().strip()
    with open("/proc/sys/vm/nr_hugepages") as f:
        assert report["checks"]["hugetlb"]["data"]["nr_hugepages"] == f.read().strip()


def test_python_is_the_real_elf(report):
    data = report["checks"]["python"]["data"]
    assert data["elf"] == os.path.realpath(sys.executable)
    with open(data["elf"], "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert os.path.exists(data["interpreter"])


def test_exit_status_follows_required_checks(report):
    checks = run_checks()
    assert report["ok"] == all_required_ok(checks)
    assert report["returncode"] == (0 if report["ok"] else 1)
    text = subprocess.run(["forkd-jupyter", "doctor"], capture_output=True, text=True)
    assert text.returncode == report["returncode"]
    lines = text.stdout.strip().splitlines()
    assert len(lines) == len(report["checks"]) + 1
    assert all(line.split()[0] in ("ok", "warn", "FAIL") for line in lines[:-1])
