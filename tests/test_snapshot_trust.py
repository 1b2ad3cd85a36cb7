"""A saved snapshot is a trust boundary: a file edited after the save is
refused (it fails authentication), and even a file that authenticates (the
user's own edit) cannot widen what its children may read, nor bring an
address-space map or sizes this VMM could not have made."""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from guest_helpers import run_ok, value

from forkd_jupyter.vmm import Sandbox, SandboxError, Snapshot, saved

# Saving creates the user's snapshot key in the state directory: one of the
# module's own.
pytestmark = [pytest.mark.kvm, pytest.mark.usefixtures("own_state_dir")]


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory, own_state_dir):
    """One saved snapshot of a sandbox holding an open host file; each
    test edits a copy of it."""
    sb = Sandbox.spawn(memory_mib=512)
    try:
        run_ok(sb, "marker = 'saved'\nimport os\nhost_file = open(os.__file__)")
        snap = sb.snapshot(mode="full")
        path = tmp_path_factory.mktemp("saved") / "snap"
        snap.save(path)
        snap.close(force=True)
    finally:
        sb.close()
    return path


@pytest.fixture
def copy(saved_dir, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(saved_dir, dst)
    return dst


# ------------------------------------------------- the state file's layout


class State:
    """Fields of a saved ``state`` file (snap_save.c), by byte offset."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.pos = 12  # magic, version
        self.fields: dict[str, tuple[int, int]] = {}
        for name, kind in [
            ("ram_bytes", "u64"), ("pid", "u32"), ("exe", "str"), ("logical", "u64"),
            ("cpu", "str"), ("sig", "str"), ("brk_start", "u64"), ("brk_cur", "u64"),
            ("brk_limit", "u64"), ("mmap_top", "u64"), ("mapped", "u64"), ("vmas", "str"),
        ]:  # fmt: skip
            self._field(name, kind)
        n_roots = self._u32_at(self.pos)
        self._field("n_roots", "u32")
        for i in range(n_roots):
            self._field(f"root{i}", "str")
        for name, kind in [("agent_dir", "str"), ("exe2", "str"), ("layer_limit", "u64")]:
            self._field(name, kind)
        self._field("cwd", "str")
        self._field("umask", "u32")
        self.fdt_at = self.pos

    def _u32_at(self, at: int) -> int:
        return struct.unpack_from("<I", self.data, at)[0]

    def _field(self, name: str, kind: str) -> None:
        start = self.pos
        if kind == "u64":
            self.pos += 8
        elif kind == "u32":
            self.pos += 4
        else:  # length-prefixed string or blob
            self.pos += 4 + self._u32_at(self.pos)
        self.fields[name] = (start, self.pos)

    def payload(self, name: str) -> bytes:
        start, end = self.fields[name]
        return bytes(self.data[start + 4 : end])

    def replace(self, name: str, raw: bytes) -> None:
        """Replaces a field's encoded bytes (length prefix included for str)."""
        start, end = self.fields[name]
        self.data[start:end] = raw

    def set_str(self, name: str, value: bytes) -> None:
        self.replace(name, struct.pack("<I", len(value)) + value)

    def with_crc(self) -> bytes:
        """The edited file with its CRC-32 recomputed, as a forger would."""
        body = bytes(self.data[:-4])
        return body + struct.pack("<I", zlib.crc32(body))


def edit_state(path: Path, edit) -> None:
    state = State((path / "state").read_bytes())
    edit(state)
    (path / "state").write_bytes(state.with_crc())


def vmas(state: State) -> list[list[int]]:
    blob = state.payload("vmas")
    return [list(struct.unpack_from("<QQii", blob, i)) for i in range(0, len(blob), 24)]


def set_vmas(state: State, table: list[list[int]]) -> None:
    state.set_str("vmas", b"".join(struct.pack("<QQii", *v) for v in table))


# --------------------------------------------------------------- tests


def test_the_untouched_copy_loads(copy):
    snap = Snapshot.load(copy)
    (child,) = snap.spawn()
    try:
        assert value(child, "marker") == "saved"
    finally:
        child.close()
        snap.close()


def test_agent_dir_set_to_root_with_a_recomputed_crc_is_refused(copy):
    """The tampering of the issue: the agent directory (shown at /opt/forkd)
    edited to `/`, the CRC recomputed."""
    edit_state(copy, lambda s: s.set_str("agent_dir", b"/"))
    with pytest.raises(SandboxError, match="failed authentication"):
        Snapshot.load(copy)


def test_even_an_authenticated_file_cannot_widen_the_view(copy, tmp_path):
    """Re-signed with the user's own key, the edit is accepted as data, yet
    the view comes from this host's configuration: nothing more is readable."""
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "token").write_text("do not read")

    def edit(s: State) -> None:
        s.set_str("agent_dir", b"/")
        s.set_str("root0", str(secret_dir).encode())

    edit_state(copy, edit)
    saved.sign(str(copy))
    snap = Snapshot.load(copy)
    (child,) = snap.spawn()
    try:
        assert value(child, "marker") == "saved"
        for path in ["/opt/forkd/etc/shadow", "/opt/forkd/usr/bin", str(secret_dir / "token")]:
            assert value(child, f"os.path.exists({path!r})") is False, path
        assert value(child, "os.path.exists('/opt/forkd')") is True  # the real agent dir
    finally:
        child.close()
        snap.close()


@pytest.mark.parametrize(
    "what",
    ["roots", "fd path", "vma table", "ram size", "memory image", "layer", "meta", "auth"],
)
def test_any_edit_is_refused(copy, what):
    if what == "roots":
        edit_state(copy, lambda s: s.set_str("root0", b"/etc"))
    elif what == "fd path":
        # The open host file's path, wherever it is in the table: same length.
        def edit(s: State) -> None:
            at = s.data.index(b"/os.py", s.fdt_at)
            s.data[at : at + 6] = b"/os.px"

        edit_state(copy, edit)
    elif what == "vma table":
        edit_state(copy, lambda s: set_vmas(s, [[0x10000, 1 << 29, 7, 0]]))
    elif what == "ram size":
        edit_state(copy, lambda s: s.replace("ram_bytes", struct.pack("<Q", 2 << 30)))
    elif what == "memory image":
        with open(copy / "memory.img", "r+b") as f:
            data = os.lseek(f.fileno(), 0, os.SEEK_DATA)
            f.seek(data)
            byte = f.read(1)
            f.seek(data)
            f.write(bytes([byte[0] ^ 1]))
    elif what == "layer":
        data = bytearray((copy / "layer.memfs").read_bytes())
        data[len(data) // 2] ^= 1
        (copy / "layer.memfs").write_bytes(bytes(data))
    elif what == "meta":
        meta = json.loads((copy / "meta.json").read_text())
        meta["memory_mib"] = 4096
        (copy / "meta.json").write_text(json.dumps(meta))
    else:
        (copy / "auth").unlink()
    with pytest.raises(SandboxError, match="authentication|not a saved snapshot"):
        Snapshot.load(copy)


def test_an_authenticated_vma_table_or_size_out_of_bounds_is_refused(copy):
    """Fields the user's own key vouches for are still checked."""
    original = (copy / "state").read_bytes()
    bad_edits = {
        "overlapping vmas": lambda s: set_vmas(s, vmas(s) + vmas(s)[:1]),
        "vma past the end of RAM": lambda s: set_vmas(s, [[0x10000, 1 << 40, 7, 0]]),
        "vma in the null guard": lambda s: set_vmas(s, [[0, 1 << 20, 7, 0]]),
        "ram size past the image": lambda s: s.replace("ram_bytes", struct.pack("<Q", 2 << 30)),
        "ram size not whole huge pages": lambda s: s.replace(
            "ram_bytes", struct.pack("<Q", (512 << 20) + 4096)
        ),
    }
    for name, edit in bad_edits.items():
        (copy / "state").write_bytes(original)
        edit_state(copy, edit)
        saved.sign(str(copy))
        with pytest.raises(SandboxError, match="load snapshot"):
            Snapshot.load(copy)
            pytest.fail(f"{name} was accepted")


def test_a_snapshot_of_another_interpreter_is_refused(copy):
    def edit(s: State) -> None:
        other = s.payload("exe")[:-1] + b"X"
        s.set_str("exe", other)
        s.set_str("exe2", other)

    edit_state(copy, edit)
    saved.sign(str(copy))
    with pytest.raises(SandboxError, match="another Python interpreter"):
        Snapshot.load(copy)


def test_another_key_or_a_key_others_can_read_is_refused(copy):
    key = Path(os.environ["FORKD_JUPYTER_STATE_DIR"]) / "snapshot.key"
    original = key.read_bytes()
    try:
        key.write_bytes(os.urandom(32))  # another user's (or a lost) key
        with pytest.raises(SandboxError, match="failed authentication"):
            Snapshot.load(copy)
        key.write_bytes(original)
        key.chmod(0o644)
        with pytest.raises(SandboxError, match="mode 0600"):
            Snapshot.load(copy)
    finally:
        key.write_bytes(original)
        key.chmod(0o600)
    Snapshot.load(copy).close()
