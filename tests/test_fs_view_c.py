"""The filesystem view's C test program, built with AddressSanitizer and UBSan.

tests/c/test_fs_*.c drive the files system-call family's handlers
directly (guest memory is a plain buffer, see tests/c/fs_harness.c) over the
same read-only roots a sandbox gets, so it needs no KVM. It must exit 0
(LeakSanitizer included) and report how many checks passed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from forkd_jupyter.vmm import guest_env

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "forkd_jupyter" / "vmm" / "csrc"
TESTS_C = ROOT / "tests" / "c"

# The VMM sources under test, and what they need from the core.
SOURCES = [
    "fs/view.c",
    "fs/view_node.c",
    "fs/view_copy.c",
    "fs/view_vdir.c",
    "file/file_kinds.c",
    "file/file_dev.c",
    "file/file_pipe.c",
    "file/file_pty.c",
    "file/pty_ldisc.c",
    "file/file_epoll.c",
    "file/ring_write.c",
    "sys/sys_file_path.c",
    "sys/sys_file_names.c",
    "sys/sys_file_attr.c",
    "sys/sys_file_fd.c",
    "sys/sys_file_anon.c",
    "sys/sys_file_xattr.c",
    "sys/sys_file_lock.c",
    "sys/sys_procfs.c",
    "sys/sys_procnet.c",
    "sys/sys_sysfs.c",
    "sys/sys_text.c",
    "core/fdt.c",
    "core/file_locks.c",
    "core/mm.c",
    "core/mm_names.c",
    "kvm/kvm_populate.c",
    "lib/crc32.c",
    "lib/guest_cpus.c",
    "lib/pagemap.c",
]

# The program runs about 7,000 checks; far fewer means parts were skipped.
MIN_CHECKS = 5_000


def test_fs_view_c_program(tmp_path):
    gcc = shutil.which("gcc")
    assert gcc is not None, "gcc is required to build tests/c/test_fs_view.c"
    exe = tmp_path / "test_fs_view"
    build = subprocess.run(
        [
            gcc,
            "-std=gnu11",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-Wno-unused-parameter",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer",
            "-pthread",
            f"-I{CSRC}",
            f"-I{TESTS_C}",
            *[str(p) for p in sorted(TESTS_C.glob("test_fs_*.c"))],
            str(TESTS_C / "fs_harness.c"),
            *[str(CSRC / name) for name in SOURCES],
            *[str(p) for p in sorted(CSRC.glob("fs/memfs_*.c"))],
            "-o",
            str(exe),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr

    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    args = [
        str(exe),
        guest_env.python_elf(),
        str(guest_env.AGENT_HOST_DIR),
        *guest_env.read_only_roots(),
    ]
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "FAIL" not in output, output
    match = re.search(r"^fs_view: (\d+) passed$", run.stdout, re.MULTILINE)
    assert match is not None, output
    assert int(match.group(1)) >= MIN_CHECKS, output
