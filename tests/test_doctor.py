"""The doctor's probes agree with independent checks made here against the
real kernel (ctypes ioctls, os.memfd_create, /sys and /proc files, the ELF
headers parsed in Python), and its exit status follows the required checks."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import mmap
import os
import re
import struct
import subprocess
import sys

import pytest

from forkd_jupyter.doctor import OK, all_required_ok, python, run_checks
from forkd_jupyter.vmm.probes import probe_elf

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_CHECK_EXTENSION = 0xAE03
KVM_CREATE_VCPU = 0xAE41
KVM_CAP_SYNC_REGS = 74
SYS_USERFAULTFD = 323
UFFD_API = 0xAA
UFFDIO_API = 0xC018AA3F  # _IOWR(0xAA, 0x3F, struct uffdio_api)
UFFDIO_REGISTER = 0xC020AA00  # _IOWR(0xAA, 0x00, struct uffdio_register)
UFFDIO_COPY = 0xC028AA03  # _IOWR(0xAA, 0x03, struct uffdio_copy)
UFFDIO_REGISTER_MODE_MISSING = 1
UFFDIO_REGISTER_MODE_WP = 2
UFFD_USER_MODE_ONLY = 1
USERFAULTFD_IOC_NEW = 0xAA00  # _IO(0xAA, 0x00)
WP_FEATURES = (1 << 12) | (1 << 13)  # WP_HUGETLBFS_SHMEM, WP_UNPOPULATED

# UFFD_FEATURE_* bit numbers of the Linux UAPI (include/uapi/linux/userfaultfd.h).
UAPI_FEATURES = (
    "PAGEFAULT_FLAG_WP EVENT_FORK EVENT_REMAP EVENT_REMOVE MISSING_HUGETLBFS MISSING_SHMEM "
    "EVENT_UNMAP SIGBUS THREAD_ID MINOR_HUGETLBFS MINOR_SHMEM EXACT_ADDRESS WP_HUGETLBFS_SHMEM "
    "WP_UNPOPULATED POISON WP_ASYNC MOVE"
).split()
UAPI_HEADER = "/usr/include/linux/userfaultfd.h"

REQUIRED = {"kvm", "userfaultfd", "uffd_wp_shmem", "uffd_wp_unpopulated", "memfd", "python"}
INFORMATIONAL = {"shmem_thp", "hugetlb", "uffd_wp_async", "uffd_fill", "image_store"}
LINE = re.compile(r"^(ok  |warn|FAIL)  (\S+) +\S.*$")

libc = ctypes.CDLL(None, use_errno=True)


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forkd_jupyter", "doctor", *args], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def report() -> dict:
    out = doctor("--json")
    doc = json.loads(out.stdout)
    doc["returncode"] = out.returncode
    return doc


def checks_of(report: dict) -> dict:
    return report["checks"]


def new_uffd(features: int = 0, flags: int = 0) -> tuple[int, int]:
    """A userfaultfd after the UFFDIO_API handshake; returns (fd, features)."""
    fd = libc.syscall(SYS_USERFAULTFD, os.O_CLOEXEC | os.O_NONBLOCK | flags)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    api = (ctypes.c_uint64 * 3)(UFFD_API, features, 0)  # {api, features, ioctls}
    fcntl.ioctl(fd, UFFDIO_API, api)
    return fd, api[1]


# --------------------------------------------------------------- KVM


@pytest.mark.kvm
def test_kvm_check_matches_the_device(report):
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    try:
        version = fcntl.ioctl(kvm, KVM_GET_API_VERSION)
        sync_regs = fcntl.ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS)
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
        os.close(vcpu)
        os.close(vm)
    finally:
        os.close(kvm)
    check = checks_of(report)["kvm"]
    assert check["data"]["api_version"] == version == 12
    assert check["data"]["sync_regs"] == sync_regs
    assert check["data"]["create_vm_error"] is None
    assert check["data"]["create_vcpu_error"] is None
    assert check["status"] == OK and f"KVM_CAP_SYNC_REGS {sync_regs}" in check["detail"]


@pytest.mark.kvm
def test_guest_user_mode_rate_decides_its_status(report):
    check = checks_of(report)["guest_user_mode"]
    data = check["data"]
    assert data["user_loop_error"] is None
    assert data["user_loop_iterations"] >= 100_000 and data["user_loop_seconds"] > 0
    rate = data["user_loop_iterations"] / data["user_loop_seconds"]
    assert rate == pytest.approx(data["user_loop_per_second"])
    assert check["status"] == ("ok" if rate >= 1e8 else "warn")
    assert check["required"] is False  # slow is a warning; not running at all fails


# -------------------------------------------------------- userfaultfd


def test_feature_names_agree_with_the_system_header():
    if not os.path.exists(UAPI_HEADER):
        pytest.skip(f"{UAPI_HEADER} is not installed")
    with open(UAPI_HEADER) as f:
        defined = re.findall(r"#define UFFD_FEATURE_(\w+)\s+\(1<<(\d+)\)", f.read())
    assert defined
    for name, bit in defined:
        assert UAPI_FEATURES[int(bit)] == name


def test_userfaultfd_features_match_the_kernel(report):
    fd, offered = new_uffd()
    os.close(fd)
    data = checks_of(report)["userfaultfd"]["data"]
    assert data["syscall_error"] is None and data["api_error"] is None
    names = [UAPI_FEATURES[b] if b < len(UAPI_FEATURES) else f"BIT{b}" for b in range(64)]
    assert data["features"] == sorted(names[b] for b in range(64) if offered >> b & 1)
    for name in ("WP_UNPOPULATED", "WP_ASYNC"):
        want = (
            "ok" if name in data["features"] else ("fail" if name == "WP_UNPOPULATED" else "warn")
        )
        assert checks_of(report)[f"uffd_{name.lower()}"]["status"] == want


def test_dev_userfaultfd_matches_the_device(report):
    try:
        dev = os.open("/dev/userfaultfd", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        expected = os.strerror(e.errno)
    else:
        try:
            os.close(fcntl.ioctl(dev, USERFAULTFD_IOC_NEW, os.O_CLOEXEC))
            expected = None
        except OSError as e:
            expected = os.strerror(e.errno)
        finally:
            os.close(dev)
    assert checks_of(report)["userfaultfd"]["data"]["devnode_error"] == expected


def fill_a_page_here() -> str | None:
    """Fills a missing page of a private memfd mapping through a userfaultfd
    of user-mode faults only, as a child's placement does; None when the
    page then reads what was copied, else the error."""
    try:
        fd, _ = new_uffd(flags=UFFD_USER_MODE_ONLY)
    except (AssertionError, OSError) as e:
        return str(e)
    mem = os.memfd_create("doctor-test-fill")
    os.ftruncate(mem, 2 << 20)
    region = mmap.mmap(mem, 2 << 20, mmap.MAP_PRIVATE)
    anchor = ctypes.c_char.from_buffer(region)
    page = ctypes.create_string_buffer(b"\x5a" * 4096, 4096)
    try:
        at = ctypes.addressof(anchor)
        reg = (ctypes.c_uint64 * 4)(at, 2 << 20, UFFDIO_REGISTER_MODE_MISSING, 0)
        fcntl.ioctl(fd, UFFDIO_REGISTER, reg)
        copy = (ctypes.c_uint64 * 5)(at, ctypes.addressof(page), 4096, 0, 0)
        fcntl.ioctl(fd, UFFDIO_COPY, copy)
    except OSError as e:
        return os.strerror(e.errno)
    finally:
        os.close(fd)  # unregisters the range before anything reads it
    try:
        return None if region[:4096] == b"\x5a" * 4096 else "the page reads otherwise"
    finally:
        del anchor
        region.close()
        os.close(mem)


def test_fill_check_matches_a_fill_made_here(report):
    check = checks_of(report)["uffd_fill"]
    error = fill_a_page_here()
    assert check["status"] == ("ok" if error is None else "warn")
    assert check["detail"].endswith(error or "ok")
    assert check["required"] is False


def register_memfd_for_wp() -> int:
    """Registers a populated shared memfd mapping for write-protect here;
    returns 0 or the errno, as the doctor's probe does."""
    fd, offered = new_uffd()
    os.close(fd)
    fd, _ = new_uffd(offered & WP_FEATURES)
    mem = os.memfd_create("doctor-test-wp")
    os.ftruncate(mem, 2 << 20)
    region = mmap.mmap(mem, 2 << 20, mmap.MAP_SHARED)
    region.write(b"\1" * (2 << 20))
    anchor = ctypes.c_char.from_buffer(region)
    try:
        reg = (ctypes.c_uint64 * 4)(ctypes.addressof(anchor), 2 << 20, UFFDIO_REGISTER_MODE_WP, 0)
        fcntl.ioctl(fd, UFFDIO_REGISTER, reg)
        return 0
    except OSError as e:
        return e.errno
    finally:
        del anchor
        os.close(fd)  # unregisters the range
        region.close()
        os.close(mem)


def test_wp_on_shmem_matches_a_registration_made_here(report):
    err = register_memfd_for_wp()
    check = checks_of(report)["uffd_wp_shmem"]
    assert check["status"] == ("ok" if err == 0 else "fail"), os.strerror(err)
    assert ("UFFDIO_REGISTER_MODE_WP ok" in check["detail"]) == (err == 0)


# ------------------------------------------------------------- memory


def test_memfd_matches_os_memfd_create(report):
    try:
        os.close(os.memfd_create("doctor-test"))
        works = True
    except OSError:
        works = False
    assert checks_of(report)["memfd"]["status"] == ("ok" if works else "fail")


def test_image_store_matches_a_tmpfs_made_here(report):
    """The doctor's image store is there exactly when a tmpfs with 2 MiB
    pages can be made here with the new mount API (this process may: the
    tests run as root; else the doctor's helper namespace is its way)."""
    fs = libc.syscall(430, b"tmpfs", 1)  # fsopen(FSOPEN_CLOEXEC)
    works = fs >= 0
    if works:
        works = libc.syscall(431, fs, 1, b"huge", b"within_size", 0) == 0  # FSCONFIG_SET_STRING
        works = works and libc.syscall(431, fs, 6, None, None, 0) == 0  # FSCONFIG_CMD_CREATE
        os.close(fs)
    check = checks_of(report)["image_store"]
    if os.geteuid() == 0:
        assert check["status"] == ("ok" if works else "warn"), check
    assert check["data"]["huge_pages"] == (check["status"] == "ok")
    assert ("2 MiB pages" in check["detail"]) == check["data"]["huge_pages"]


def test_shmem_thp_reports_the_sysfs_value(report):
    data = checks_of(report)["shmem_thp"]["data"]
    with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
        raw = f.read().strip()
    assert data["shmem_enabled"] == raw
    assert f"[{data['mode']}]" in raw


def hugetlb_memfd_error() -> int:
    try:
        fd = os.memfd_create("doctor-test-huge", os.MFD_HUGETLB)
    except OSError as e:
        return e.errno
    try:
        os.ftruncate(fd, 2 << 20)
        mmap.mmap(fd, 2 << 20, mmap.MAP_SHARED).close()  # reserves the huge page
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def test_hugetlb_matches_proc_and_a_memfd_made_here(report):
    check = checks_of(report)["hugetlb"]
    with open("/proc/sys/vm/nr_hugepages") as f:
        assert check["data"]["nr_hugepages"] == f.read().strip()
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("HugePages_Total:"))
    assert check["data"]["total"] == total
    err = hugetlb_memfd_error()
    assert check["status"] == ("ok" if err == 0 else "warn")
    if err:
        assert check["data"]["mfd_hugetlb_error"] == os.strerror(err)


# ------------------------------------------------------------- python


def pt_interp(path: str) -> str | None:
    with open(path, "rb") as f:
        head = f.read(64)
        (phoff,) = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ptype, _, offset, _, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
            if ptype == 3:  # PT_INTERP
                f.seek(offset)
                return f.read(filesz).rstrip(b"\0").decode()
    return None


def test_python_is_the_real_elf_with_its_loader(report):
    check = checks_of(report)["python"]
    real = os.path.realpath(sys.executable)
    with open(real, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert check["data"]["elf"] == real
    assert check["data"]["interp"] == pt_interp(real)
    assert check["status"] == "ok"


def test_a_shell_shim_is_recognised_and_fails_the_python_check(tmp_path, monkeypatch):
    shim = tmp_path / "python3"
    shim.write_text('#!/usr/bin/env bash\nexec python3.11 "$@"\n')
    shim.chmod(0o755)
    probed = probe_elf(str(shim))
    assert probed["is_script"] and not probed["is_elf"]
    assert probed["shebang"] == "#!/usr/bin/env bash"
    monkeypatch.setattr(sys, "executable", str(shim))
    [check] = python.checks()
    assert check.status == "fail" and "script" in check.detail and check.fix


def test_elf_probe_reads_other_files_as_python_does(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("plain text\n")
    assert probe_elf(str(text))["is_elf"] is False
    assert probe_elf(str(text))["is_script"] is False
    missing = probe_elf(str(tmp_path / "missing"))
    assert missing["open_error"] == os.strerror(errno.ENOENT)
    loader = pt_interp(os.path.realpath(sys.executable))
    assert probe_elf(loader)["interp"] is None  # the loader itself has no PT_INTERP


# ---------------------------------------------------------------- CLI


def test_required_and_informational_checks(report):
    checks = checks_of(report)
    assert REQUIRED | INFORMATIONAL | {"guest_user_mode"} == set(checks)
    for name in REQUIRED:
        assert checks[name]["required"] is True
        assert checks[name]["status"] in ("ok", "fail")
    for name in INFORMATIONAL:
        assert checks[name]["required"] is False
        assert checks[name]["status"] in ("ok", "warn")
    for check in checks.values():
        assert bool(check["fix"]) == (check["status"] != "ok")


def test_exit_status_follows_the_required_checks(report):
    required_ok = all(c["status"] == "ok" for c in checks_of(report).values() if c["required"])
    assert report["ok"] is required_ok is all_required_ok(run_checks())
    assert report["returncode"] == (0 if required_ok else 1)


def test_text_output_and_both_entry_points_agree(report):
    text = subprocess.run(["forkd-jupyter", "doctor"], capture_output=True, text=True)
    assert text.returncode == doctor().returncode == report["returncode"]
    lines = text.stdout.strip().splitlines()
    assert len(lines) == len(checks_of(report)) + 1
    for line in lines[:-1]:
        match = LINE.match(line)
        assert match, line
        status = checks_of(report)[match[2]]["status"]
        assert match[1].strip() == {"ok": "ok", "warn": "warn", "fail": "FAIL"}[status]
        assert ("[fix: " in line) == (status != "ok")
    assert lines[-1].endswith("ready") == (report["returncode"] == 0)


def test_help_lists_doctor_and_subcommands_register_once():
    from forkd_jupyter import cli

    out = subprocess.run(["forkd-jupyter", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "doctor" in out.stdout
    with pytest.raises(ValueError):
        cli.add_command("doctor", "again", lambda p: None, lambda a: 0)


@pytest.mark.kvm
def test_this_machine_is_ready(report):
    failed = {n: c["detail"] for n, c in checks_of(report).items() if c["status"] == "fail"}
    assert report["ok"] and report["returncode"] == 0, failed
