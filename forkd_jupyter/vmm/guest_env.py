"""What a sandbox's guest runs and sees for a Python environment
(forkd_jupyter.python_env; the caller's own by default): the interpreter ELF,
its argv and environment, and the read-only host paths of the view."""

from __future__ import annotations

import os
from pathlib import Path

from ..python_env import PythonEnv, current
from .program_trees import program_trees

GUEST_CWD = "/sandbox"
AGENT_GUEST_DIR = "/opt/forkd"
AGENT_HOST_DIR = Path(__file__).resolve().parent.parent / "guest"

# Shared libraries, the dynamic loader, time zones, compiled locales (so
# LANG=C.UTF-8 takes effect as on the host), terminal descriptions (curses,
# readline and full-screen programs on the sandbox's terminals), Tcl/Tk's
# script library (tkinter), git's templates, the loader cache, the
# alternatives the system's program links go through (/usr/bin/awk ->
# /etc/alternatives/awk -> mawk; which, pager), the system's programs (a
# shell, coreutils) for the guest's processes, and the C toolchain's parts
# beside them (the compiler's own programs and libraries, the linker's
# plugins, system headers), so that code compiled in the sandbox (an
# extension, a program) builds there; the fonts and fontconfig's
# configuration (plots render with the host's fonts, fc-list and
# matplotlib's font search find them), the distribution's os-release
# (platform.freedesktop_os_release) and time zone name (tzlocal), and the
# public data libraries look up on the host: the CA certificates and
# OpenSSL's configuration (ssl.create_default_context, requests, httpx;
# /etc/ssl/private is never a root, and /usr/lib/ssl/private, a link to it,
# reads ENOENT), the MIME table (mimetypes) and libmagic's database (`file`);
# Perl's module directories (Debian's scripts in Perl, psql's wrapper).
SYSTEM_ROOTS = (
    "/usr/bin",
    "/bin",
    "/usr/local/bin",
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/usr/lib/locale",
    "/usr/share/terminfo",
    "/lib/terminfo",
    "/etc/terminfo",
    "/usr/share/tcltk",
    "/usr/share/git-core",
    "/usr/lib/gcc",
    "/usr/libexec/gcc",
    "/usr/lib/bfd-plugins",
    "/usr/include",
    "/usr/local/include",
    "/etc/fonts",
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/usr/lib/os-release",
    "/etc/timezone",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/usr/lib/ssl",
    "/usr/share/ca-certificates",
    "/etc/mime.types",
    "/usr/lib/file",
    "/usr/share/misc",
    "/usr/share/perl",
    "/usr/share/perl5",
    "/etc/perl",
)


def python_elf() -> str:
    """The real interpreter ELF behind sys.executable (never a shell shim)."""
    return current().elf


def read_only_roots(env: PythonEnv | None = None) -> list[str]:
    """What the guest may read: the environment's own paths
    (PythonEnv.read_only_roots), the system's shared libraries and programs,
    and the trees those programs live in (program_trees)."""
    roots = (env or current()).read_only_roots()
    roots += [p for p in SYSTEM_ROOTS if os.path.exists(p) and p not in roots]
    roots += [p for p in program_trees(roots) if p not in roots]
    return roots


def guest_argv(env: PythonEnv | None = None) -> list[str]:
    """argv[0] is the interpreter as the kernel names it (a venv's
    bin/python), so CPython finds its pyvenv.cfg and prefix as it does
    there; the VMM loads the real ELF behind it."""
    return [(env or current()).executable, "-u", f"{AGENT_GUEST_DIR}/agent.py"]


def java_options(memory_mib: int) -> str:
    """A JVM reserves 1 GiB of compressed class space at start, and a
    sandbox's address space is its memory: an eighth of it (at least 64
    MiB) leaves room for the heap (a quarter by default) and the code
    cache, so `java` starts in any sandbox of 1 GiB or more."""
    return f"-XX:CompressedClassSpaceSize={max(64, min(1024, memory_mib // 8))}m"


def guest_env(env: PythonEnv | None = None, memory_mib: int = 2048) -> dict[str, str]:
    return (env or current()).guest_variables() | {
        "HOME": GUEST_CWD,
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PATH": ":".join([*(env or current()).scripts_dirs, "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "SHELL": "/bin/sh",
        "TMPDIR": "/tmp",
        "TERM": "xterm-256color",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # The guest's address space is its memory: each glibc malloc arena
        # reserves 64 MiB of it, so threads share two arenas.
        "MALLOC_ARENA_MAX": "2",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "JAVA_TOOL_OPTIONS": java_options(memory_mib),
    }
