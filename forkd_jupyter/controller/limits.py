"""Admission: the daemon refuses new sandboxes and image copies (503
problem+json) before the host runs out of memory or the number of running
sandboxes passes its limit, instead of letting the kernel's OOM killer pick
a victim (the daemon itself, or someone else's sandbox).

Invariants: a spawn of n sandboxes, children included, is admitted only
when the running ones plus those being admitted plus n stay within
``max_sandboxes``, and when the host's available memory minus what they are
expected to take stays above ``min_free_bytes``; a full or live branch only
when the same holds for a copy of the source's resident memory. Admitted
work holds its slots until its sandboxes are registered (or it failed), so
concurrent spawns cannot all squeeze through one free slot. Memory is an
estimate taken at admission: a guest that later fills its RAM is bounded
by its own memory size, not by this."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import errors as E

MIB = 1 << 20
# What one more sandbox takes at first: a warm child or a branch child is
# ~10 MiB, a cold spawn ~50 MiB (bench/warm-spawn).
SANDBOX_ESTIMATE_BYTES = 64 * MIB
DEFAULT_MAX_SANDBOXES = 256


def mem_info() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


@dataclass
class Limits:
    max_sandboxes: int = DEFAULT_MAX_SANDBOXES
    min_free_mib: int | None = None  # None: 1 GiB or 5% of the host's memory, the larger

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._admitting = 0
        # The host's memory does not change: the default is fixed at start.
        if self.min_free_mib is not None:
            self.min_free_bytes = self.min_free_mib * MIB
        else:
            self.min_free_bytes = max(1024 * MIB, mem_info().get("MemTotal", 0) // 20)

    def check_memory(self, need_bytes: int, what: str) -> None:
        available = mem_info().get("MemAvailable", 0)
        reserve = self.min_free_bytes
        if available - need_bytes < reserve:
            raise E.InsufficientMemory(
                f"{what} needs about {need_bytes // MIB} MiB; the host has "
                f"{available // MIB} MiB available and the daemon keeps {reserve // MIB} MiB "
                "free (daemon --min-free-mib): kill sandboxes or delete snapshots first",
                available_mib=available // MIB,
                needed_mib=need_bytes // MIB,
                min_free_mib=reserve // MIB,
            )

    def _check_count(self, running: int, n: int, what: str) -> None:
        """Under self._lock."""
        if running + self._admitting + n > self.max_sandboxes:
            raise E.SandboxLimit(
                f"{what} would make {running + self._admitting + n} sandboxes; the daemon "
                f"runs at most {self.max_sandboxes} (daemon --max-sandboxes)",
                running=running,
                max_sandboxes=self.max_sandboxes,
            )

    def check_branch(self, running: int, children: int, image_bytes: int, what: str) -> None:
        """A branch that copies ``image_bytes`` and starts ``children``
        (not reserved: its children are admitted as they are spawned)."""
        with self._lock:
            self._check_count(running, children, what)
        self.check_memory(image_bytes + children * SANDBOX_ESTIMATE_BYTES, what)

    @contextmanager
    def sandboxes(self, running: int, n: int, what: str) -> Iterator[None]:
        """Admits n more sandboxes (``running``: those running now) for the
        duration of the block, which registers them."""
        if n <= 0:
            yield
            return
        with self._lock:
            self._check_count(running, n, what)
            self.check_memory(n * SANDBOX_ESTIMATE_BYTES, what)
            self._admitting += n
        try:
            yield
        finally:
            with self._lock:
                self._admitting -= n
