"""Bundles the labextension (lib/ -> ../forkd_jupyter/labext/static) with
@jupyterlab/builder against the installed JupyterLab's own core package
description, so the build needs nothing but the npm packages in
node_modules. ``--development`` keeps source maps and skips minification."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILDER = HERE / "node_modules" / "@jupyterlab" / "builder" / "lib" / "build-labextension.js"


def core_path() -> Path:
    try:
        import jupyterlab
    except ImportError:
        sys.exit(f"build_labextension: JupyterLab is not installed for {sys.executable}")
    staging = Path(jupyterlab.__file__).parent / "staging"
    if not (staging / "package.json").exists():
        sys.exit(f"build_labextension: {staging}/package.json is missing")
    return staging


def main(argv: list[str]) -> int:
    if not BUILDER.exists():
        sys.exit("build_labextension: run `jlpm install` in labextension/ first")
    node = shutil.which("node") or sys.exit("build_labextension: node is not on PATH")
    command = [node, str(BUILDER), "--core-path", str(core_path()), *argv, str(HERE)]
    return subprocess.call(command, cwd=HERE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
