"""What a sandbox's guest runs and sees: the interpreter ELF, its argv and
environment, and the read-only host paths of the filesystem view."""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from pathlib import Path

GUEST_CWD = "/sandbox"
AGENT_GUEST_DIR = "/opt/forkd"
AGENT_HOST_DIR = Path(__file__).resolve().parent.parent / "guest"

# Shared libraries, the dynamic loader, time zones and the loader cache.
SYSTEM_ROOTS = (
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/usr/share/zoneinfo",
)


def python_elf() -> str:
    """The real interpreter ELF behind sys.executable (never a shell shim)."""
    exe = os.path.realpath(sys.executable)
    with open(exe, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise FileNotFoundError(f"{sys.executable} is not an ELF executable (a shim?)")
    return exe


def _package_dirs() -> list[str]:
    """site-packages and dist-packages directories of the notebook's Python.
    Entries of sys.path that are not package directories (a project
    checkout, the current directory) are deliberately left out."""
    found = []
    candidates = list(sys.path)
    candidates += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user_site:
        candidates.append(user_site)
    for entry in candidates:
        if not entry:
            continue
        name = os.path.basename(os.path.normpath(entry))
        if name in ("site-packages", "dist-packages") and os.path.isdir(entry):
            found.append(os.path.abspath(entry))
    return found


def read_only_roots() -> list[str]:
    """What the guest may read besides its layer and the agent: exactly what
    running the interpreter and importing its packages needs, whatever the
    layout (docs/filesystem.md has the table). Never a whole prefix: with a
    distro Python the prefix is /usr, and /usr/bin, /usr/share, /usr/local
    would all become readable."""
    roots = [python_elf()]  # the ELF itself (a file root), not its directory
    paths = sysconfig.get_paths()
    roots += [paths["stdlib"], paths["platstdlib"]]  # lib-dynload is inside
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
        roots.append(os.path.join(libdir, soname))  # libpython, for a shared build
    roots += _package_dirs()
    if sys.prefix != sys.base_prefix:
        cfg = os.path.join(sys.prefix, "pyvenv.cfg")  # a venv's configuration
        if os.path.isfile(cfg):
            roots.append(cfg)
    roots += [p for p in SYSTEM_ROOTS if os.path.exists(p)]
    unique = []
    for r in roots:
        r = os.path.abspath(r)
        if os.path.exists(r) and r not in unique:
            unique.append(r)
    return unique


def guest_argv() -> list[str]:
    return [python_elf(), "-u", f"{AGENT_GUEST_DIR}/agent.py"]


def guest_env() -> dict[str, str]:
    return {
        "HOME": GUEST_CWD,
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "TERM": "xterm-256color",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # Native libraries must not try to start threads: the guest has one.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
