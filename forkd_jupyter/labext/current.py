"""Which sandbox each notebook kernel currently works in, as its magics
report it (POST /forkd/api/current). The panel highlights the active
notebook's. Kept in this server's memory only: a kernel restarted or shut
down drops its entry, and the magics report again when they switch."""

from __future__ import annotations


class CurrentSandboxes:
    def __init__(self) -> None:
        self._by_kernel: dict[str, str] = {}

    def set(self, kernel_id: str, sandbox_id: str | None) -> None:
        if sandbox_id is None:
            self._by_kernel.pop(kernel_id, None)
        else:
            self._by_kernel[kernel_id] = sandbox_id

    def get(self, kernel_id: str) -> str | None:
        return self._by_kernel.get(kernel_id)

    def prune(self, live_kernel_ids: set[str]) -> None:
        """Forgets the kernels that no longer run."""
        for kernel_id in list(self._by_kernel):
            if kernel_id not in live_kernel_ids:
                del self._by_kernel[kernel_id]

    def as_dict(self) -> dict[str, str]:
        return dict(self._by_kernel)
