"""A sandbox runs the Python environment of whoever spawned it: a stdlib
venv, a uv venv, a distro Python's venv, PYTHONPATH package directories and
the user site, each built here for real, with a package installed from a
wheel built in the test. The guest's sys.prefix, sys.executable and
sys.path are the host's for the same interpreter, and its packages import."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from env_helpers import build_wheel, install, native, stdlib_venv, uv_venv
from guest_helpers import run_ok

from forkd_jupyter import python_env
from forkd_jupyter.vmm import Sandbox, SpawnError

pytestmark = pytest.mark.kvm

PROBE = (
    "import json, sys\n"
    "print(json.dumps({'prefix': sys.prefix, 'base_prefix': sys.base_prefix,\n"
    "    'executable': sys.executable,\n"
    "    'path': [p for p in sys.path if p and p != '/opt/forkd']}))\n"
)


@pytest.fixture(scope="module")
def envs():
    """A folder outside /tmp holding the environments and wheels."""
    root = Path(tempfile.mkdtemp(prefix="forkd-envs-", dir="/var/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def guest_view(python: python_env.PythonEnv, code: str = PROBE) -> tuple[dict, Sandbox]:
    sb = Sandbox.spawn(memory_mib=512, python=python)
    return json.loads(run_ok(sb, code).stdout), sb


def check_same_as_host(python: Path, package: str, value: str) -> None:
    guest, sb = guest_view(python_env.describe(str(python)))
    try:
        assert guest == json.loads(native(python, PROBE))
        assert guest["executable"] == str(python) and guest["prefix"] == str(python.parent.parent)
        imported = run_ok(sb, f"import {package}; print({package}.VALUE, {package}.__file__)")
        found, where = imported.stdout.split()
        assert found == value and where.startswith(guest["prefix"] + "/")
    finally:
        sb.close()


def test_a_stdlib_venv_is_the_guests_environment(envs):
    python = stdlib_venv(envs / "stdlib-venv")
    install(python, build_wheel(envs, "fjprobe_stdlib", "from-stdlib-venv"))
    check_same_as_host(python, "fjprobe_stdlib", "from-stdlib-venv")


def test_a_uv_venv_is_the_guests_environment(envs):
    python = uv_venv(envs / "uv-venv")
    install(python, build_wheel(envs, "fjprobe_uv", "from-uv-venv"))
    check_same_as_host(python, "fjprobe_uv", "from-uv-venv")


def test_the_programs_of_a_venvs_base_packages_run_when_it_sees_them(envs):
    """A --system-site-packages venv imports its base's packages, so their
    programs (pytest here) are on the guest's PATH after the venv's own; a
    venv that does not see them has neither."""
    sees_base = stdlib_venv(envs / "sees-base", None, "--system-site-packages")
    seeing = python_env.describe(str(sees_base))
    isolated = python_env.describe(str(stdlib_venv(envs / "isolated")))
    base_bin = str(Path(seeing.base_prefix) / "bin")
    assert (Path(base_bin) / "pytest").exists(), "the test interpreter's base has pytest"
    probe = (
        "import json, os, shutil, subprocess\n"
        "which = shutil.which('pytest')\n"
        "ran = which and subprocess.run([which, '--version'], capture_output=True).returncode\n"
        "print(json.dumps([os.environ['PATH'].split(':')[:2], which, ran]))"
    )
    seen, sb = guest_view(seeing, probe)
    sb.close()
    assert seen == [[seeing.scripts_dir, base_bin], f"{base_bin}/pytest", 0]
    seen, sb = guest_view(isolated, probe)
    sb.close()
    assert seen[0][0] == isolated.scripts_dir and base_bin not in seen[0]
    assert not (seen[1] or "").startswith(base_bin)


def test_a_distro_python_venv_is_the_guests_environment(envs):
    # Debian's own interpreter: its prefix is /usr, its packages in dist-packages.
    assert Path("/usr/bin/python3").exists(), "the machine's distro Python is part of the image"
    python = stdlib_venv(envs / "distro-venv", "/usr/bin/python3")
    install(python, build_wheel(envs, "fjprobe_distro", "from-distro-venv"))
    check_same_as_host(python, "fjprobe_distro", "from-distro-venv")
    roots = python_env.describe(str(python)).read_only_roots()
    assert "/usr" not in roots and "/usr/lib/python3.11" in roots  # never a whole prefix


def test_pythonpath_package_directories_and_the_user_site(envs, monkeypatch):
    extra = envs / "pythonpath"
    (extra / "fjprobe_pp").mkdir(parents=True)
    (extra / "fjprobe_pp" / "__init__.py").write_text("VALUE = 'from-pythonpath'\n")
    home = envs / "home"
    user_site = home / ".local" / "lib" / "python3.11" / "site-packages" / "fjprobe_user"
    user_site.mkdir(parents=True)
    (user_site / "__init__.py").write_text("VALUE = 'from-user-site'\n")
    monkeypatch.setenv("HOME", str(home))
    python = Path(python_env.current().executable)
    env = python_env.describe(str(python), [str(extra)])
    assert env.user_site == str(user_site.parent) and env.pythonpath == (str(extra),)
    sb = Sandbox.spawn(memory_mib=512, python=env)
    try:
        code = "import fjprobe_pp, fjprobe_user; print(fjprobe_pp.VALUE, fjprobe_user.VALUE)"
        got = run_ok(sb, code)
        assert got.stdout.split() == ["from-pythonpath", "from-user-site"]
        # The guest's home is its own; only the package directories are visible.
        listing = run_ok(sb, f"import os; print(os.path.exists({str(home / 'other')!r}))")
        assert listing.stdout.strip() == "False"
    finally:
        sb.close()


def test_describing_an_interpreter_runs_nothing_from_its_pythonpath(envs):
    # The interpreter runs isolated: a PYTHONPATH directory shadowing the
    # standard library is made readable to the guest, never executed on the host.
    trap = envs / "trap"
    trap.mkdir()
    marker = envs / "trap-ran"
    (trap / "json.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = python_env.describe(python_env.current().executable, [str(trap)])
    assert env.pythonpath == (str(trap),) and not marker.exists()


def test_too_broad_pythonpath_entries_are_not_made_readable(envs, monkeypatch):
    monkeypatch.setenv("HOME", str(envs))
    env = python_env.describe(python_env.current().executable, ["/", str(envs), str(envs.parent)])
    assert env.pythonpath == ()
    assert "/" not in env.read_only_roots() and str(envs) not in env.read_only_roots()


def test_environments_the_guest_cannot_use_are_refused_clearly(envs, tmp_path):
    with pytest.raises(python_env.PythonEnvError, match="under /tmp"):
        python_env.describe(str(stdlib_venv(tmp_path / "venv-in-tmp")))
    with pytest.raises(python_env.PythonEnvError, match="not a usable Python"):
        python_env.describe("/bin/sh")
    with pytest.raises(python_env.PythonEnvError, match="not named python"):
        python_env.describe("/bin/true")  # refused unrun: only an interpreter is ever run
    with pytest.raises(python_env.PythonEnvError, match="absolute path"):
        python_env.describe("python3")
    with pytest.raises(python_env.PythonEnvError, match="not an executable"):
        python_env.describe(str(envs))
    not_elf = python_env.current().to_json() | {"elf": __file__, "implementation": "cpython"}
    with pytest.raises(python_env.PythonEnvError, match="not an ELF"):
        python_env.PythonEnv.from_description(not_elf)
    with pytest.raises(python_env.PythonEnvError, match="is Python 3.9"):
        python_env.PythonEnv.from_description(not_elf | {"version": "3.9.18"})
    gone = dataclasses.replace(python_env.current(), elf="/nonexistent/python3")
    with pytest.raises(SpawnError):
        Sandbox.spawn(memory_mib=256, python=gone)


def test_one_daemon_spawns_each_clients_environment(daemon, envs):
    from forkd_jupyter.client import BadRequest

    a = stdlib_venv(envs / "client-a")
    install(a, build_wheel(envs, "fjprobe_a", "only-in-a"))
    b = uv_venv(envs / "client-b")
    install(b, build_wheel(envs, "fjprobe_b", "only-in-b"))
    [rec_a] = daemon.spawn_sandboxes(python=str(a), memory_limit_mib=512)
    [rec_b] = daemon.spawn_sandboxes(python=str(b), memory_limit_mib=512)
    try:
        assert rec_a["python"] == str(a) and rec_b["python"] == str(b)
        got = daemon.run_cell(
            rec_a["id"], "import fjprobe_a, sys; print(fjprobe_a.VALUE, sys.prefix)"
        )
        assert got.stdout.split() == ["only-in-a", str(a.parent.parent)]
        missing = daemon.run_cell(rec_b["id"], "import fjprobe_a")
        assert missing.error is not None and missing.error.ename == "ModuleNotFoundError"
        got = daemon.run_cell(rec_b["id"], "import fjprobe_b; print(fjprobe_b.VALUE)")
        assert got.stdout.strip() == "only-in-b"
        # Children run their source's environment, whatever the request says.
        branch = daemon.branch_sandbox(rec_a["id"], mode="diff", count=1)
        [child] = branch["children"]
        assert child["python"] == str(a)
        got = daemon.run_cell(child["id"], "import fjprobe_a; print(fjprobe_a.VALUE)")
        assert got.stdout.strip() == "only-in-a"
    finally:
        for rec in (rec_a, rec_b):
            daemon.kill_sandbox(rec["id"])
    for bad, words in (("/bin/true", "not a usable Python"), ("python3", "absolute path")):
        with pytest.raises(BadRequest) as e:
            daemon.spawn_sandboxes(python=bad)
        assert words in e.value.detail and e.value.problem.get("field") == "python"


def test_a_kernel_in_a_venv_spawns_sandboxes_of_its_venv(daemon, envs, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # A venv that also sees the base installation (ipykernel, forkd_jupyter),
    # with a package of its own, and a kernel spec that starts it.
    venv = envs / "kernel-venv"
    python = stdlib_venv(venv, None, "--system-site-packages")
    install(python, build_wheel(envs, "fjprobe_kernel", "kernel-venv-only"))
    spec = envs / "jupyter" / "kernels" / "fjvenv"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "venv",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(envs / "jupyter"))
    cells = [
        "%load_ext forkd_jupyter",
        "%forkd spawn --name venv-kernel --mem 512",
        "%%forkd\nimport sys, fjprobe_kernel as p\nprint(p.VALUE, sys.prefix, sys.executable)",
        "%forkd kill venv-kernel",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=180, kernel_name="fjvenv").execute()
    out = "".join(o.get("text", "") for o in nb.cells[2].outputs if o.output_type == "stream")
    assert out.split() == ["kernel-venv-only", str(venv), str(python)]
