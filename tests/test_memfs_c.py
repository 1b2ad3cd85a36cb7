"""The memfs layer's C test program, built with AddressSanitizer and UBSan.

tests/c/test_memfs.c is compiled together with forkd_jupyter/vmm/csrc/fs/memfs_*.c
into a temporary directory and run; it must exit 0 (LeakSanitizer included)
and report how many checks passed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "forkd_jupyter" / "vmm" / "csrc"
TEST_SRC = ROOT / "tests" / "c" / "test_memfs.c"

# The program runs over 13,000 checks; far fewer means parts of it were skipped.
MIN_CHECKS = 10_000


def test_memfs_c_program(tmp_path):
    gcc = shutil.which("gcc")
    assert gcc is not None, "gcc is required to build tests/c/test_memfs.c"
    exe = tmp_path / "test_memfs"
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
            str(TEST_SRC),
            *[str(p) for p in sorted(CSRC.glob("fs/memfs_*.c"))],
            str(CSRC / "lib" / "crc32.c"),
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
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "FAIL" not in output, output
    match = re.search(r"^memfs: (\d+) passed$", run.stdout, re.MULTILINE)
    assert match is not None, output
    assert int(match.group(1)) >= MIN_CHECKS, output
