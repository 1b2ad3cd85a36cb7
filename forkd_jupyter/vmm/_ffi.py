"""The single import point of the compiled C core: only ``forkd_jupyter.vmm``
modules import ``ffi`` and ``lib``, and only from here."""

from typing import Any

from ._core import ffi, lib  # noqa: F401


def c_strings(values: list[str], keep: list) -> Any:
    """A NULL-terminated ``char *[]`` of values; the cdata it points into is
    appended to keep, which must outlive every use of the array."""
    arr = ffi.new("char *[]", len(values) + 1)
    for i, v in enumerate(values):
        s = ffi.new("char[]", v.encode())
        keep.append(s)
        arr[i] = s
    arr[len(values)] = ffi.NULL
    keep.append(arr)
    return arr
