"""The one cffi build script for the VMM's C core (API mode).

The C core is laid out by subsystem under ``csrc/`` (``csrc/README.md`` gives
the layers and what each may call). The ``*_api.h`` headers, wherever they sit,
are declaration-only (no preprocessor lines but integer ``#define``s): each is
fed to ``cdef`` and included by the C files that implement it. Every ``.c``
under ``csrc/`` is compiled in; includes name their folder
(``#include "kvm/kvm_vm.h"``) relative to ``csrc/``.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).parent / "csrc"

# The subsystem folders of csrc/, lowest first: a file calls functions of its
# own folder or of folders before it, never after (csrc/README.md; checked by
# tests/test_c_layers.py). probe/ stands aside and calls lib/ and kvm/ only.
LAYERS = ("lib", "kvm", "fs", "core", "file", "sys", "run", "snap", "api")
SIDE_LAYERS = {"probe": ("lib", "kvm")}

# vmm_api.h declares the sandbox handle type the other API headers use.
API_HEADERS = sorted(CSRC.rglob("*_api.h"), key=lambda h: (h.name != "vmm_api.h", h.name))

ffibuilder = FFI()
for header in API_HEADERS:
    ffibuilder.cdef(header.read_text())
ffibuilder.set_source(
    "forkd_jupyter.vmm._core",
    "#include <stdint.h>\n#include <stddef.h>\n"
    + "".join(f'#include "{h.relative_to(CSRC)}"\n' for h in API_HEADERS),
    sources=sorted(str(p) for p in CSRC.rglob("*.c")),
    include_dirs=[str(CSRC)],
    extra_compile_args=[
        "-std=gnu11",
        "-O2",
        "-g",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "-fno-strict-aliasing",
        "-Wno-format-truncation",
        "-pthread",
    ],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(Path(__file__).parents[2] / "build" / "cffi"), verbose=True)
