"""The compiled C core loads through its single import point and exposes the
functions and types the Python layers rely on."""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import forkd_jupyter

PACKAGE = Path(forkd_jupyter.__file__).resolve().parent

KVM_PROBE_FIELDS = [
    "open_errno",
    "api_version",
    "create_vm_errno",
    "create_vcpu_errno",
    "sync_regs",
    "user_loop_errno",
    "user_loop_iters",
    "user_loop_ns",
]


def test_core_is_the_extension_built_into_the_package():
    from forkd_jupyter.vmm._ffi import ffi, lib

    core = sys.modules["forkd_jupyter.vmm._core"]  # loaded by the import point
    path = Path(core.__file__).resolve()
    assert path.parent == PACKAGE / "vmm"
    assert path.name == "_core" + sysconfig.get_config_var("EXT_SUFFIX")
    assert ffi is core.ffi and lib is core.lib


def test_core_exposes_the_probe_and_sandbox_api():
    from forkd_jupyter.vmm._ffi import ffi, lib

    for name in (
        "fj_probe_kvm",
        "fj_probe_uffd",
        "fj_probe_memfd",
        "fj_probe_elf",
        "fj_sandbox_create",
        "fj_sandbox_run",
        "fj_syscall_table_entry",
    ):
        assert callable(getattr(lib, name)), name
    fields = [name for name, _ in ffi.typeof("struct fj_kvm_probe").fields]
    assert fields == KVM_PROBE_FIELDS
    info = ffi.new("struct fj_syscall_info *")
    assert lib.fj_syscall_table_entry(0, info) == 0
    assert lib.fj_probe_memfd(0) == 0


def _python_files():
    for path in PACKAGE.rglob("*.py"):
        yield path.relative_to(PACKAGE), path.read_text()


def test_only_the_vmm_package_imports_the_core():
    importers = {
        rel.parts[0]
        for rel, text in _python_files()
        if re.search(r"from \.?_ffi import|import .*_ffi\b|from \._core|_core import", text)
    }
    assert importers == {"vmm"}


def test_only_the_probes_module_calls_the_probe_functions():
    callers = {str(rel) for rel, text in _python_files() if "lib.fj_probe_" in text}
    assert callers == {"vmm/probes.py"}
