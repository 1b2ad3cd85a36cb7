"""The cluster's parts that need no cluster: placement by free memory, the
manifest's signature and layout checks, and the node's block cache
refusing content that is not what its hash names."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

pytest.importorskip("zstandard", reason="clusters need the test extras (zstandard)")

import zstandard  # noqa: E402

from forkd_jupyter.cluster.chunk_cache import ChunkCache  # noqa: E402
from forkd_jupyter.cluster.manifest import BLOCK, Manifest, ManifestError, digest  # noqa: E402
from forkd_jupyter.cluster.placement import spread  # noqa: E402

GIB = 1 << 30
KEY = b"k" * 32


def test_equal_nodes_get_equal_shares_and_the_first_wins_ties():
    assert spread(12, [8 * GIB] * 3, 64 << 20) == [4, 4, 4]
    assert spread(4, [8 * GIB] * 3, 64 << 20) == [2, 1, 1]


def test_more_free_memory_takes_more_children():
    counts = spread(10, [8 * GIB, 2 * GIB], GIB)
    assert sum(counts) == 10 and counts[0] >= 4 * counts[1] > 0
    assert spread(3, [GIB, 100 * GIB, GIB], 64 << 20) == [0, 3, 0]
    with pytest.raises(ValueError):
        spread(1, [], GIB)


def _manifest() -> Manifest:
    files = {"meta.json": digest(b"{}"), "state": digest(b"s"), "layer.memfs": digest(b"l")}
    blocks = ((0, BLOCK, "a" * 64), (2 * BLOCK, 100, "b" * 64))
    return Manifest(4 * BLOCK, blocks, files)


def test_a_signed_manifest_parses_back_and_any_change_is_refused():
    m = _manifest()
    canonical, mac = m.canonical(), m.sign(KEY)
    assert Manifest.parse(canonical, mac, KEY) == m
    with pytest.raises(ManifestError, match="authentication"):
        Manifest.parse(canonical.replace(b"aaaa", b"aaab", 1), mac, KEY)
    with pytest.raises(ManifestError, match="authentication"):
        Manifest.parse(canonical, mac, b"x" * 32)  # signed under another cluster's key
    with pytest.raises(ManifestError, match="authentication"):
        Manifest.parse(canonical, mac[:-1] + ("0" if mac[-1] != "0" else "1"), KEY)


def test_a_manifest_whose_blocks_leave_the_image_or_overlap_is_refused():
    m = _manifest()
    bad = [
        dataclasses.replace(m, image_size=BLOCK),  # a block past the end
        dataclasses.replace(m, blocks=((100, 10, "a" * 64),)),  # not aligned
        dataclasses.replace(m, blocks=((0, BLOCK, "a" * 64), (0, BLOCK, "b" * 64))),
        dataclasses.replace(m, files={"state": digest(b"s")}),
    ]
    for manifest in bad:
        with pytest.raises(ManifestError):
            Manifest.parse(manifest.canonical(), manifest.sign(KEY), KEY)


def test_the_small_files_must_match_their_hashes():
    m = _manifest()
    m.check_file("state", b"s")
    with pytest.raises(ManifestError, match="state"):
        m.check_file("state", b"S")


def test_the_block_cache_keeps_only_content_matching_its_name(tmp_path):
    cache = ChunkCache(tmp_path / "cache", limit_bytes=3 * BLOCK)
    raw = bytes(range(256)) * (BLOCK // 256)
    h = hashlib.sha256(raw).hexdigest()
    packed = zstandard.ZstdCompressor().compress(raw)
    with pytest.raises(ManifestError, match="does not match"):
        cache.put(h, "zstd", zstandard.ZstdCompressor().compress(raw[:-1] + b"x"))
    with pytest.raises(ManifestError, match="does not match"):
        cache.put(h, "raw", raw[:-1] + b"x")
    with pytest.raises(ManifestError, match="decompress"):
        cache.put(h, "zstd", b"not zstd at all")
    with pytest.raises(ManifestError, match="unknown encoding"):
        cache.put(h, "gzip", packed)
    with pytest.raises(ManifestError, match="larger than a block"):
        cache.put(h, "raw", raw + b"x")
    with pytest.raises(ManifestError, match="not a block hash"):
        cache.has("../../etc/passwd")  # a name is a hash, never a path
    assert not cache.has(h)
    assert cache.put(h, "zstd", packed) == raw and cache.get(h) == raw
    # A file damaged on disk is dropped, never returned.
    path = tmp_path / "cache" / h[:2] / h
    path.write_bytes(b"z" + zstandard.ZstdCompressor().compress(b"y" * BLOCK))
    assert cache.get(h) is None and not path.exists()
    # Blocks that do not compress are kept as they came.
    assert cache.put(h, "raw", raw) == raw and cache.get(h) == raw


def test_the_block_cache_evicts_the_least_recently_used_first(tmp_path):
    cache = ChunkCache(tmp_path / "cache", limit_bytes=0)
    blocks = [bytes([i]) * BLOCK for i in range(1, 4)]
    names = [hashlib.sha256(b).hexdigest() for b in blocks]
    c = zstandard.ZstdCompressor()
    for h, b in zip(names, blocks, strict=True):
        cache.put(h, "zstd", c.compress(b))
    cache.limit_bytes = cache.size_bytes() - 1  # room for all but one
    import os
    import time

    old = time.time() - 100
    os.utime(tmp_path / "cache" / names[1][:2] / names[1], (old, old))
    assert cache.trim() > 0
    assert [cache.has(h) for h in names] == [True, False, True]
