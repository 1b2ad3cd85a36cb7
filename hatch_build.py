"""Build hook: compiles the VMM's C core through cffi (API mode) into the package.

The compiled module is written next to its Python package
(``forkd_jupyter/vmm/_core.*.so``) so that editable and regular installs load
it from the same place.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).parent
BUILD_SCRIPT = ROOT / "forkd_jupyter" / "vmm" / "_build.py"


def compile_core() -> Path:
    spec = importlib.util.spec_from_file_location("_forkd_vmm_build", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tmpdir = ROOT / "build" / "cffi"
    built = Path(module.ffibuilder.compile(tmpdir=str(tmpdir), verbose=False))
    target = ROOT / "forkd_jupyter" / "vmm" / ("_core" + sysconfig.get_config_var("EXT_SUFFIX"))
    # A new file renamed over the old one: a process that has the old module
    # loaded (a running daemon) keeps its inode; copying in place would
    # change the code under it.
    staging = target.with_name(target.name + ".new")
    shutil.copy2(built, staging)
    os.replace(staging, target)
    return target


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        target = compile_core()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(target)] = str(target.relative_to(ROOT))


if __name__ == "__main__":
    print(compile_core(), file=sys.stderr)
