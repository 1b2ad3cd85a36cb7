"""The view for every Python layout (docs/filesystem.md, "The Python
environment a guest sees, and what it may read"): a pyenv build, a venv of
the distribution's Python (base prefix /usr), a uv venv of the pyenv build
and a venv made by pyenv's `python` (bin/python, a link to python3.11: the
venv's bin/python names that link, so the interpreter is two links away).

For each layout a real sandbox runs that layout's own interpreter
(python_env.describe), and the guest checks what it can see, and what
readlink tells it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from env_helpers import stdlib_venv, uv_venv
from guest_helpers import run_ok, value

from forkd_jupyter import python_env
from forkd_jupyter.vmm import Sandbox, guest_env

pytestmark = pytest.mark.kvm

PROBE = """
import json, sys, sysconfig
paths = sysconfig.get_paths()
print(json.dumps({"stdlib": paths["stdlib"], "purelib": paths["purelib"],
                  "scripts": paths["scripts"], "prefix": sys.prefix,
                  "base_prefix": sys.base_prefix}))
"""
DISTRO_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def venv_home():
    """Outside /tmp: the guest's /tmp is its own layer, never a host root."""
    home = Path(tempfile.mkdtemp(prefix="forkd-layouts-", dir="/var/tmp"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


PYENV_LINK = os.path.join(sys.base_prefix, "bin", "python")


@pytest.fixture(
    scope="module", params=["pyenv", "distro-venv", "uv-venv-of-pyenv", "venv-of-pyenv-link"]
)
def layout(request, venv_home):
    if request.param == "pyenv":
        assert "pyenv" in sys.base_prefix, "the test interpreter is this project's pyenv build"
        python = sys.executable
    elif request.param == "distro-venv":
        assert os.path.exists(DISTRO_PYTHON), "the machine's distro Python is part of the image"
        python = str(stdlib_venv(venv_home / "distro", DISTRO_PYTHON))
    elif request.param == "uv-venv-of-pyenv":
        python = str(uv_venv(venv_home / "uv"))
    else:
        assert os.path.islink(PYENV_LINK), "pyenv's bin/python is a link to python3.X"
        python = str(stdlib_venv(venv_home / "pyenv-link", PYENV_LINK))
        assert os.readlink(python) == PYENV_LINK
    env = python_env.describe(python)
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    info |= {"name": request.param, "env": env, "exe": env.elf,
             "roots": guest_env.read_only_roots(env)}  # fmt: skip
    return info


@pytest.fixture(scope="module")
def guest(layout):
    """A sandbox running the layout's own interpreter."""
    sb = Sandbox.spawn(memory_mib=512, python=layout["env"])
    yield sb
    sb.close()


def _visible(sb: Sandbox, paths: list[str]) -> dict[str, bool]:
    sb.push("probe_paths", paths)
    return dict(
        zip(paths, value(sb, "[__import__('os').path.exists(p) for p in probe_paths]"), strict=True)
    )


def test_no_root_is_a_whole_prefix(layout):
    for root in layout["roots"]:
        assert root not in ("/", "/usr", "/usr/local", "/usr/share", "/etc", "/root", "/home")
        assert root not in (layout["prefix"], layout["base_prefix"]), root


def test_what_the_guest_reads(layout, guest):
    exe = layout["exe"]
    readable = [
        exe,
        os.path.join(layout["stdlib"], "os.py"),
        os.path.join(layout["stdlib"], "lib-dynload"),
        layout["purelib"],
        "/lib/x86_64-linux-gnu/libc.so.6",
    ]
    if layout["prefix"] != layout["base_prefix"]:
        readable.append(os.path.join(layout["prefix"], "pyvenv.cfg"))
    # The programs beside the interpreter (pip, the environment's scripts)
    # and the system's (a shell, coreutils) run in the guest's processes.
    readable += (
        [
            os.path.join(d, n)
            for d in {os.path.dirname(layout["env"].executable), "/usr/bin"}
            for n in sorted(os.listdir(d))[:40]
            if not os.path.islink(os.path.join(d, n))  # (a link may lead out of the view)
        ][:16]
        + ["/bin/sh", "/usr/bin/env"]
    )
    # Its C headers (an extension built in the sandbox), nothing else of
    # the prefix.
    readable += [os.path.join(d, "Python.h") for d in layout["env"].include_dirs[:1]]
    assert layout["env"].include_dirs, layout["name"]
    hidden = [
        os.path.join(layout["base_prefix"], "lib", "pkgconfig"),
        os.path.join(layout["base_prefix"], "share", "man"),
        "/usr/share/doc",
        "/etc/shadow",
        "/etc/machine-id",
    ]
    hidden = [p for p in hidden if os.path.lexists(p)]
    seen = _visible(guest, readable + hidden)
    assert [p for p in readable if not seen[p]] == [], layout["name"]
    assert [p for p in hidden if seen[p]] == [], layout["name"]


def test_readlink_never_names_a_host_path_outside_the_view(layout, guest):
    """Every symlink in the layout's standard library and package directory:
    readlink gives the host's target when it leads into the view, and
    ENOENT when it leads out (Debian links sitecustomize.py into /etc)."""
    links = []
    for d in {layout["stdlib"], layout["purelib"]}:
        links += [
            os.path.join(d, n) for n in sorted(os.listdir(d)) if os.path.islink(os.path.join(d, n))
        ]
    guest.push("probe_links", links)
    run_ok(
        guest,
        "import os\n"
        "def _rl(p):\n"
        "    try:\n        return os.readlink(p)\n"
        "    except FileNotFoundError:\n        return None\n"
        "link_targets = [_rl(p) for p in probe_links]",
    )
    targets = value(guest, "link_targets")
    visible = _visible(guest, [os.path.realpath(p) for p in links])
    for link, target in zip(links, targets, strict=True):
        if visible[os.path.realpath(link)]:
            assert target == os.readlink(link), link
        else:
            assert target is None, f"{link} revealed {target}"
    if layout["name"] == "distro-venv":
        assert any(t is None for t in targets) or not links  # sitecustomize.py -> /etc


def test_the_interpreter_runs_by_its_own_name(layout, guest):
    """sys.executable, its python3 and python3.X siblings and a script of
    the environment (pip's shebang names bin/python) start the same
    interpreter in the guest's processes: multiprocessing's spawn and
    resource tracker, pip and pytest run that way."""
    bindir = os.path.dirname(layout["env"].executable)
    names = [layout["env"].executable] + [
        os.path.join(bindir, n)
        for n in ("python3", f"python3.{sys.version_info[1]}")
        if os.path.lexists(os.path.join(bindir, n))
    ]
    guest.push("probe_names", names)
    run_ok(
        guest,
        "import subprocess, sys\n"
        "ran = [subprocess.run([n, '-c', 'import sys; print(sys.prefix)'],\n"
        "       capture_output=True, text=True).stdout.strip() for n in probe_names]\n"
        "ran.append(sys.executable)",
    )
    assert value(guest, "ran") == [layout["prefix"]] * len(names) + [layout["env"].executable]
    run_ok(
        guest,
        "import multiprocessing as mp\n"
        "with mp.get_context('spawn').Pool(1) as p:\n"
        "    spawned = p.map(abs, [-3])",
    )
    assert value(guest, "spawned") == [3]
