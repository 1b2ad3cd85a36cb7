"""Real Python environments for the tests: wheels built in the test, and
venvs made by the tools users make them with. They live under /var/tmp (a
sandbox keeps /tmp as its own, so an environment there cannot be used)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from forkd_jupyter.vmm.guest_env import python_elf


def build_wheel(directory: Path, name: str, value: str) -> Path:
    """A pure-Python wheel of package ``name`` whose ``VALUE`` is ``value``."""
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n".encode(),
        f"{name}-1.0.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode()
        ),
        f"{name}-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: forkd-jupyter-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    wheel = directory / f"{name}-1.0-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{name}-1.0.dist-info/RECORD,,")
        z.writestr(f"{name}-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def install(python: Path, wheel: Path) -> None:
    """Installs wheel into the environment of python, offline, with the
    test interpreter's pip (so environments need no pip of their own)."""
    subprocess.run(
        [python_elf(), "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-index", "--no-deps", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def stdlib_venv(where: Path, base: str | None = None, *args: str) -> Path:
    """`python -m venv` (of base, default the test interpreter); its python."""
    subprocess.run(
        [base or python_elf(), "-m", "venv", "--without-pip", *args, str(where)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return where / "bin" / "python"


def uv_venv(where: Path) -> Path:
    """`uv venv` for the test interpreter; its python."""
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    subprocess.run(
        [uv, "venv", "--quiet", "--python", python_elf(), str(where)],
        check=True, capture_output=True, timeout=300, env={**os.environ, "UV_OFFLINE": "1"},
    )  # fmt: skip
    return where / "bin" / "python"


def native(python: Path, code: str, **env: str) -> str:
    """What code prints when the environment's python runs it on the host."""
    out = subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **env}, cwd="/",
    )  # fmt: skip
    return out.stdout
