"""Where the children of one branch go: balanced by free memory.

Each child is given, one by one, to the node with the most free memory
left once the children already given to it are counted (``child_bytes``
each). Ties go to the node listed first (the daemon's own node leads the
list: its children need no shipping)."""

from __future__ import annotations

from collections.abc import Sequence


def spread(n: int, free_bytes: Sequence[int], child_bytes: int) -> list[int]:
    """How many of ``n`` children each node gets, in the order given."""
    if not free_bytes:
        raise ValueError("no node to place children on")
    counts = [0] * len(free_bytes)
    for _ in range(n):
        left = [free - count * child_bytes for free, count in zip(free_bytes, counts, strict=True)]
        counts[max(range(len(left)), key=lambda i: (left[i], -i))] += 1
    return counts
