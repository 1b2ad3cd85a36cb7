"""The view for every Python layout (docs/filesystem.md, "What the guest may
read"): a pyenv build, a venv of the distribution's Python (base prefix
/usr) and a venv of the pyenv build (the layout virtualenv and uv make).

For each layout the read-only roots are computed by that layout's own
interpreter (guest_env.read_only_roots, loaded by path), then a real
sandbox is given them (on top of the roots its own agent needs) and the
guest checks what it can see, and what readlink tells it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, guest_env

pytestmark = pytest.mark.kvm

GUEST_ENV = Path(guest_env.__file__)
PROBE = f"""
import importlib.util, json, os, sys, sysconfig
spec = importlib.util.spec_from_file_location("ge", {str(GUEST_ENV)!r})
ge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ge)
paths = sysconfig.get_paths()
print(json.dumps({{
    "roots": ge.read_only_roots(),
    "exe": ge.python_elf(),
    "stdlib": paths["stdlib"],
    "purelib": paths["purelib"],
    "scripts": paths["scripts"],
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
}}))
"""


def _layout(python: str) -> dict:
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _make_venv(base_python: str, where: Path) -> str:
    tool = shutil.which("uv") or shutil.which("virtualenv")
    if tool and os.path.basename(tool) == "uv":
        subprocess.run([tool, "venv", "-q", "-p", base_python, str(where)], check=True)
    elif tool:
        subprocess.run([tool, "-q", "-p", base_python, str(where)], check=True)
    else:  # the same layout: pyvenv.cfg, bin/python -> base, lib/pythonX.Y/site-packages
        subprocess.run([base_python, "-m", "venv", "--without-pip", str(where)], check=True)
    return str(where / "bin" / "python")


DISTRO_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def venv_home():
    """Outside /tmp: the guest's /tmp is its own layer, never a host root."""
    base = Path(__file__).resolve().parents[1] / "build"
    if str(base).startswith(("/tmp/", "/sandbox/")):
        base = Path.home() / ".cache" / "forkd-jupyter-tests"
    base.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="layouts-", dir=base))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module", params=["pyenv", "distro-venv", "venv-of-pyenv"])
def layout(request, venv_home):
    if request.param == "pyenv":
        if "pyenv" not in sys.base_prefix:
            pytest.skip("the running Python is not a pyenv build")
        python = sys.executable
    elif request.param == "distro-venv":
        if not os.path.exists(DISTRO_PYTHON):
            pytest.skip(f"no distribution Python at {DISTRO_PYTHON}")
        python = _make_venv(DISTRO_PYTHON, venv_home / "distro")
    else:
        python = _make_venv(os.path.realpath(sys.executable), venv_home / "pyenv")
    info = _layout(python)
    info["name"] = request.param
    return info


@pytest.fixture(scope="module")
def guest(layout):
    """A sandbox that sees the layout's roots (plus what its agent needs)."""
    own = guest_env.read_only_roots()
    extra = [r for r in layout["roots"] if r not in own]
    original = guest_env.read_only_roots
    guest_env.read_only_roots = lambda: own + extra
    try:
        sb = Sandbox.spawn(memory_mib=512)
    finally:
        guest_env.read_only_roots = original
    run_ok(sb, "import os")
    yield sb
    sb.close()


def _visible(sb: Sandbox, paths: list[str]) -> dict[str, bool]:
    sb.push("probe_paths", paths)
    return dict(zip(paths, value(sb, "[os.path.exists(p) for p in probe_paths]"), strict=True))


def test_no_root_is_a_whole_prefix(layout):
    for root in layout["roots"]:
        assert root not in ("/", "/usr", "/usr/local", "/usr/bin", "/bin", "/etc", "/root")
        assert root not in (layout["prefix"], layout["base_prefix"]), root
        assert not os.path.isdir(root) or root != os.path.dirname(layout["exe"]), root


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
    # Other programs beside the interpreter, and the venv's bin/ (activate
    # scripts, pip): their directories are shown only as the way to the ELF.
    neighbours = sorted(
        os.path.join(d, n)
        for d in {os.path.dirname(exe), layout["scripts"]}
        for n in os.listdir(d)
        if os.path.realpath(os.path.join(d, n)) != exe
    )
    hidden = [
        os.path.join(layout["base_prefix"], "include"),
        os.path.join(layout["base_prefix"], "share", "man"),
        "/usr/share/doc",
        "/usr/local/bin",
        "/etc/passwd",
        *neighbours[:8],
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
