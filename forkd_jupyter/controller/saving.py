"""Crash-safe copies of snapshots on disk.

Layout: ``snapshots/<id>/<generation>.fjsnap/`` holds one complete saved
copy; the record's ``saved_path`` (in the atomically replaced state.json)
names the generation that counts. A save writes a new generation under a
temporary name, fsyncs every file and directory, renames it into place, and
only then is the record pointed at it; the previous generation is removed
after that. So a daemon killed at any moment leaves the record pointing at
a complete copy (the old one or the new one), and whatever else is in the
directory is a leftover that ``sweep`` removes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SUFFIX = ".fjsnap"
PARTIAL = ".partial"


def fsync_tree(root: Path) -> None:
    """Every file and directory under root (root included) reaches the disk."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def next_generation(snap_dir: Path) -> int:
    gens = [0]
    if snap_dir.exists():
        for p in snap_dir.iterdir():
            stem = p.name.split(".", 1)[0]
            if stem.isdigit():
                gens.append(int(stem))
    return max(gens) + 1


def partial_dir(snap_dir: Path, gen: int) -> Path:
    return snap_dir / f"{gen}{SUFFIX}{PARTIAL}"


def commit(partial: Path) -> Path:
    """Makes a fully written partial copy durable and gives it its final
    name; returns that name."""
    fsync_tree(partial)
    final = partial.with_name(partial.name[: -len(PARTIAL)])
    os.rename(partial, final)
    fsync_dir(partial.parent)
    return final


def sweep(snapshots_dir: Path, keep: set[str]) -> None:
    """Removes every copy under snapshots_dir that no record points at."""
    if not snapshots_dir.exists():
        return
    for snap_dir in snapshots_dir.iterdir():
        if not snap_dir.is_dir():
            continue
        for copy in list(snap_dir.iterdir()):
            if str(copy) not in keep:
                shutil.rmtree(copy, ignore_errors=True) if copy.is_dir() else copy.unlink()
        if not any(snap_dir.iterdir()):
            snap_dir.rmdir()
