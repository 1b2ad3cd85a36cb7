"""The shippable form of a saved snapshot, and its authentication.

A manifest names everything a node needs to rebuild a snapshot: the
SHA-256 of each small file of the saved form (meta.json, state,
layer.memfs), the RAM image's size, and the image's non-zero blocks as
(offset, length, SHA-256). Its canonical bytes (sorted JSON) are signed
with HMAC-SHA256 under the cluster key, a random key the daemon makes when
it joins a cluster and hands to its node agents over Ray (the cluster's
own authentication is what protects it on the way). A node accepts a
manifest only with a valid signature, the small files only when their
hashes match it, and a block only when its content hashes to the value
the manifest names: what a node loads is exactly what the daemon packed.

Invariant: ``key`` (the SHA-256 of the canonical bytes) identifies the
image's content; two snapshots with the same key spawn identical children.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

FORMAT = 1
BLOCK = 256 << 10  # the unit of shipping and of the content cache
SMALL_FILES = ("meta.json", "state", "layer.memfs")


class ManifestError(Exception):
    """A manifest or a piece of a shipped snapshot that fails its check."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    image_size: int
    blocks: tuple[tuple[int, int, str], ...]  # (offset, length, sha256 hex), offsets ascending
    files: dict[str, str]  # small file name -> sha256 hex

    def canonical(self) -> bytes:
        doc = {
            "format": FORMAT,
            "block": BLOCK,
            "image_size": self.image_size,
            "blocks": [list(b) for b in self.blocks],
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @property
    def key(self) -> str:
        return digest(self.canonical())

    @property
    def hashes(self) -> set[str]:
        return {h for _, _, h in self.blocks}

    @property
    def data_bytes(self) -> int:
        return sum(length for _, length, _ in self.blocks)

    def sign(self, cluster_key: bytes) -> str:
        return hmac.new(cluster_key, self.canonical(), hashlib.sha256).hexdigest()

    @classmethod
    def parse(cls, canonical: bytes, mac: str, cluster_key: bytes) -> Manifest:
        """The manifest of signed canonical bytes; ManifestError otherwise."""
        expected = hmac.new(cluster_key, canonical, hashlib.sha256).hexdigest()
        if not isinstance(mac, str) or not hmac.compare_digest(expected, mac):
            raise ManifestError("the shipped snapshot failed authentication (bad signature)")
        try:
            doc = json.loads(canonical)
            if doc["format"] != FORMAT or doc["block"] != BLOCK:
                raise ManifestError(f"a manifest of another format ({doc['format']})")
            blocks = tuple((int(o), int(n), str(h)) for o, n, h in doc["blocks"])
            manifest = cls(int(doc["image_size"]), blocks, dict(doc["files"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"a malformed manifest ({e})") from None
        manifest.check_layout()
        return manifest

    def check_layout(self) -> None:
        """Blocks inside the image, aligned, ascending, never overlapping."""
        if set(self.files) != set(SMALL_FILES):
            raise ManifestError("a manifest must name exactly meta.json, state and layer.memfs")
        end = 0
        for offset, length, _ in self.blocks:
            if offset % BLOCK or offset < end or not 0 < length <= BLOCK:
                raise ManifestError(f"a manifest block at {offset} is misplaced")
            end = offset + length
        if end > self.image_size:
            raise ManifestError("a manifest block lies past the end of the image")

    def check_file(self, name: str, data: bytes) -> None:
        if self.files.get(name) != digest(data):
            raise ManifestError(f"the shipped {name} does not match its manifest")
