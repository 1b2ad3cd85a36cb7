"""The compiled C core loads through its single import point."""

from __future__ import annotations

import re
from pathlib import Path

import forkd_jupyter.vmm._ffi as ffi_module

PACKAGE = Path(ffi_module.__file__).resolve().parents[1]


def test_core_loads_from_the_package_with_its_api():
    from forkd_jupyter.vmm._ffi import ffi, lib

    core = Path(lib.__file__ if hasattr(lib, "__file__") else ffi_module.__file__)
    assert core.parent == PACKAGE / "vmm"
    for name in (
        "fj_sandbox_create",
        "fj_sandbox_run",
        "fj_sandbox_snapshot",
        "fj_probe_kvm",
        "fj_probe_uffd",
        "fj_layer_read",
        "fj_syscall_table_entry",
    ):
        assert hasattr(lib, name), name
    info = ffi.new("struct fj_syscall_info *")
    assert lib.fj_syscall_table_entry(0, info) == 0


def test_only_the_vmm_package_imports_the_core():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if re.search(r"from \.?_ffi import|import .*_ffi|from \._core|_core import", text):
            importers.append(path.relative_to(PACKAGE).parts[0])
    assert importers and set(importers) == {"vmm"}
