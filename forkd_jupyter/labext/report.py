"""Kernel side of the panel's "current sandbox" highlight: tells the Jupyter
server that started this kernel which sandbox the kernel now works in
(``POST /forkd/api/current``). Standard library only, so the magics can call
it without importing jupyter_server; it never raises: outside a kernel, or
when no server with the extension is found, it returns False.

The server is found through its runtime file (``jpserver-<pid>.json`` in
Jupyter's runtime directory, which holds its URL and token): the one whose
pid is this kernel's parent, since jupyter-server launches its kernels
itself. See docs/labextension.md."""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_S = 2.0
_KERNEL_FILE = re.compile(r"kernel-(?P<id>[0-9a-fA-F-]+)\.json$")


def current_kernel_id() -> str | None:
    """This kernel's id, from its connection file's name, or None outside
    an ipykernel started by a Jupyter server."""
    # A kernel has imported ipykernel long before; importing it here, in a
    # process that is not one, would swap comm's manager under its widgets.
    if "ipykernel.kernelapp" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:  # noqa: BLE001 - not in a kernel: no id
        return None
    match = _KERNEL_FILE.search(name)
    return match["id"] if match else None


def parent_server_info() -> dict | None:
    """The runtime file of the Jupyter server that launched this process."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return None
    path = Path(jupyter_runtime_dir()) / f"jpserver-{os.getppid()}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def report_current_sandbox(
    sandbox_id: str | None,
    kernel_id: str | None = None,
    server_info: dict | None = None,
) -> bool:
    """Records ``sandbox_id`` (None: no sandbox) as this kernel's current
    sandbox in its Jupyter server; True when the server accepted it."""
    kernel_id = kernel_id or current_kernel_id()
    server_info = server_info or parent_server_info()
    if not kernel_id or not server_info or not server_info.get("url"):
        return False
    url = server_info["url"].rstrip("/") + "/forkd/api/current"
    body = json.dumps({"kernel_id": kernel_id, "sandbox_id": sandbox_id}).encode()
    headers = {"Content-Type": "application/json"}
    if server_info.get("token"):
        headers["Authorization"] = f"token {server_info['token']}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False
