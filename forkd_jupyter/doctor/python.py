"""The interpreter sandboxes run: the real ELF behind sys.executable (a
shell shim such as pyenv's cannot be loaded into a guest) and its loader."""

from __future__ import annotations

import os
import sys

from .check import Check

EM_X86_64 = 62
ELFCLASS64 = 2


def checks() -> list[Check]:
    from ..vmm.probes import probe_elf

    exe = sys.executable
    real = os.path.realpath(exe) if exe else ""
    elf = probe_elf(real) if real else {"open_error": "sys.executable is empty"}
    data = {"executable": exe, "elf": real, "version": sys.version.split()[0], **elf}
    fix = "start the notebook kernel with a real CPython binary, not a wrapper script"
    if elf["open_error"]:
        detail = f"cannot read {real!r}: {elf['open_error']}"
        return [Check.of("python", False, detail, fix, data=data)]
    if elf["is_script"]:
        detail = f"{exe} -> {real} is a script ({elf['shebang']}), not an ELF"
        return [Check.of("python", False, detail, fix, data=data)]
    if not elf["is_elf"] or elf["elf_class"] != ELFCLASS64 or elf["machine"] != EM_X86_64:
        detail = f"{exe} -> {real} is not an x86-64 ELF executable"
        return [Check.of("python", False, detail, fix, data=data)]
    interp = elf["interp"]
    loader_ok = not elf["interp_error"] and (interp is None or os.path.exists(interp))
    loader = f"dynamic loader {interp}" if interp else "statically linked"
    if not loader_ok:
        loader += f" ({elf['interp_error'] or 'missing'})"
    return [
        Check.of(
            "python",
            loader_ok,
            f"{exe} -> {real}: x86-64 ELF, {loader}, Python {data['version']}",
            "the interpreter's dynamic loader (PT_INTERP) must exist on this host",
            data=data,
        )
    ]
