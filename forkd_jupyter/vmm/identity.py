"""What a running guest image depends on besides its Python environment:
the guest agent's code and the compiled core (whose snapshot format a saved
image is in). Warm bases (controller.bases) are keyed by it."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from pathlib import Path

from . import _ffi, guest_env


@functools.cache
def code_identity() -> str:
    h = hashlib.sha256()
    agent = Path(guest_env.AGENT_HOST_DIR)
    for path in sorted(agent.rglob("*.py")):
        h.update(str(path.relative_to(agent)).encode())
        h.update(path.read_bytes())
    assert _ffi.lib is not None  # the core is loaded: its module is in sys.modules
    st = os.stat(sys.modules["forkd_jupyter.vmm._core"].__file__)
    h.update(f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()
