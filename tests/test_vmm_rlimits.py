"""Resource limits as a Linux process has them: kept per process, read
back, inherited by children, checked as Linux checks a change (a soft limit
above the hard one EINVAL, a hard one raised EPERM), and enforced where the
sandbox models the resource: RLIMIT_AS and RLIMIT_DATA bound the memory a
process maps (MemoryError in Python), RLIMIT_NOFILE its descriptors."""

from __future__ import annotations

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm


def in_child(sandbox, code: str) -> list:
    """What code prints, line by line, in a new Python process of the
    sandbox (a limit set there dies with it)."""
    sandbox.push("child_code", code)
    run_ok(
        sandbox,
        "import subprocess, sys\n"
        "child = subprocess.run([sys.executable, '-c', child_code], capture_output=True,\n"
        "                       text=True, timeout=120)\n"
        "child_out = [child.returncode, child.stdout.splitlines(), child.stderr]",
    )
    rc, lines, err = value(sandbox, "child_out")
    assert rc == 0, err
    return lines


def test_address_space_and_data_limits_bound_allocations(sandbox):
    lines = in_child(
        sandbox,
        "import mmap, resource\n"
        "def alloc(n):\n"
        "    try:\n        return len(bytearray(n))\n"
        "    except MemoryError:\n        return 'MemoryError'\n"
        "resource.setrlimit(resource.RLIMIT_AS, (400 << 20, resource.RLIM_INFINITY))\n"
        "print(alloc(600 << 20), alloc(64 << 20))\n"
        "try:\n    mmap.mmap(-1, 600 << 20)\nexcept OSError as e:\n    print(e.errno)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (300 << 20, 300 << 20))\n"
        "print(alloc(400 << 20), alloc(64 << 20))\n"
        "shared = mmap.mmap(-1, 400 << 20)  # shared memory is not data\n"
        "print(len(shared), resource.getrlimit(resource.RLIMIT_DATA) == (300 << 20, 300 << 20))",
    )
    assert lines == ["MemoryError 67108864", "12", "MemoryError 67108864", "419430400 True"]


def test_descriptor_limit(sandbox):
    lines = in_child(
        sandbox,
        "import fcntl, os, resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (32, 64))\n"
        "fds = []\n"
        "try:\n"
        "    while True:\n        fds.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError as e:\n    print(e.errno, max(fds))\n"
        "for bad in (lambda: os.dup2(0, 40), lambda: fcntl.fcntl(0, fcntl.F_DUPFD, 40)):\n"
        "    try:\n        bad()\n    except OSError as e:\n        print(e.errno)\n"
        "os.close(fds.pop())\n"
        "print(os.dup(0))\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "print(os.dup2(0, 40))\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (0, 64))  # no new fd at all\n"
        "for new in (lambda: os.open('/dev/null', os.O_RDONLY), lambda: os.dup(0)):\n"
        "    try:\n        new()\n    except OSError as e:\n        print(e.errno)",
    )
    # EMFILE at 32; dup2 past the limit EBADF, F_DUPFD past it EINVAL (os.dup
    # is F_DUPFD_CLOEXEC from 0); a soft limit of 0 leaves no fd to open.
    assert lines == ["24 31", "9", "22", "31", "40", "24", "22"]


def test_limits_are_kept_checked_and_inherited(sandbox):
    lines = in_child(
        sandbox,
        "import os, resource, subprocess, sys\n"
        "R = resource.RLIMIT_NOFILE\n"
        "print(resource.getrlimit(resource.RLIMIT_AS)[1] == resource.RLIM_INFINITY)\n"
        "resource.setrlimit(R, (100, 200))\n"
        "for bad in ((300, 200), (100, 100000)):\n"
        "    try:\n        resource.setrlimit(R, bad)\n    except ValueError as e:\n"
        "        print(e)\n"
        "print(resource.getrlimit(R), resource.prlimit(os.getpid(), R))\n"
        "kid = subprocess.run([sys.executable, '-c',\n"
        "    'import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))'],\n"
        "    capture_output=True, text=True)\n"
        "print(kid.stdout.strip())\n"
        "sleeper = subprocess.Popen(['sleep', '30'])\n"
        "print(resource.prlimit(sleeper.pid, R, (10, 20)), resource.prlimit(sleeper.pid, R))\n"
        "sleeper.kill()\n"
        "try:\n    resource.prlimit(99999, R)\nexcept ProcessLookupError:\n    print('ESRCH')",
    )
    assert lines == [
        "True",
        "current limit exceeds maximum limit",
        "not allowed to raise maximum limit",
        "(100, 200) (100, 200)",
        "(100, 200)",
        "(100, 200) (10, 20)",
        "ESRCH",
    ]
