"""The single import point of the compiled C core: only ``forkd_jupyter.vmm``
modules import ``ffi`` and ``lib``, and only from here."""

from ._core import ffi, lib  # noqa: F401
