"""Files of a sandbox's writable layer over HTTP: one file, listings, tar in
and out, and every way out of the layer refused without touching a host
file."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from openapi_check import checked_client

pytestmark = pytest.mark.kvm

PASSWD = Path("/etc/passwd").read_bytes()


@pytest.fixture(scope="module")
def sb(daemon):
    [rec] = daemon.spawn_sandboxes(memory_limit_mib=256)
    yield rec
    daemon.kill_sandbox(rec["id"])


@pytest.fixture(scope="module")
def http(daemon):
    with checked_client(daemon) as client:
        yield client


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def test_put_get_one_file_seen_by_the_guest(daemon, sb):
    assert (
        daemon.write_file(sb["id"], "data/in.csv", b"a,b\n1,2\n")["path"] == "/sandbox/data/in.csv"
    )
    code = "open('/sandbox/data/in.csv').read().splitlines()[1]"
    assert daemon.run_cell(sb["id"], code).result["text/plain"] == "'1,2'"
    daemon.run_cell(sb["id"], "open('/tmp/out.bin', 'wb').write(bytes(range(256)) * 3)")
    assert daemon.read_file(sb["id"], "/tmp/out.bin") == bytes(range(256)) * 3
    names = {e["name"]: e for e in daemon.list_dir(sb["id"], "/sandbox/data")}
    assert names["in.csv"]["type"] == "file" and names["in.csv"]["size"] == 8


def test_tar_round_trip(daemon, sb):
    archive = tar_of(
        file_member("proj/a.txt", b"alpha"),
        file_member("proj/sub/b.bin", b"\x00\x01" * 1000),
    )
    written = daemon.upload_tar(sb["id"], "/sandbox/up", archive)["files"]
    assert sorted(written) == ["/sandbox/up/proj/a.txt", "/sandbox/up/proj/sub/b.bin"]
    check = "open('/sandbox/up/proj/sub/b.bin','rb').read() == b'\\x00\\x01' * 1000"
    assert daemon.run_cell(sb["id"], check).result["text/plain"] == "True"
    back = tarfile.open(fileobj=io.BytesIO(daemon.download_tar(sb["id"], "/sandbox/up")))
    contents = {m.name: back.extractfile(m).read() for m in back.getmembers() if m.isfile()}
    assert contents == {"proj/a.txt": b"alpha", "proj/sub/b.bin": b"\x00\x01" * 1000}


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "/etc/passwd", "/sandbox/../etc/passwd", "/tmp/../../etc/shadow", "/root"],
)
def test_paths_outside_the_layer_are_refused(http, sb, path):
    for r in (
        http.get(f"/sandboxes/{sb['id']}/files", params={"path": path}),
        http.put(f"/sandboxes/{sb['id']}/files", params={"path": path}, content=b"x"),
        http.get(f"/sandboxes/{sb['id']}/tar", params={"path": path}),
    ):
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert PASSWD not in r.content


def test_symlinks_in_the_layer_are_never_followed(daemon, http, sb, tmp_path):
    host_file = tmp_path / "host-secret"
    host_file.write_bytes(b"host secret")
    daemon.run_cell(
        sb["id"],
        "import os\nos.makedirs('/sandbox/links', exist_ok=True)\n"
        "os.symlink('/etc/passwd', '/sandbox/links/passwd')\n"
        f"os.symlink({str(host_file)!r}, '/sandbox/links/secret')\n"
        "os.symlink('/etc', '/sandbox/links/etcdir')",
    )
    for name in ("passwd", "secret", "etcdir/passwd"):
        r = http.get(f"/sandboxes/{sb['id']}/files", params={"path": f"/sandbox/links/{name}"})
        assert r.status_code in (400, 404), r.text
        assert PASSWD not in r.content and b"host secret" not in r.content
    r = http.put(
        f"/sandboxes/{sb['id']}/files", params={"path": "/sandbox/links/secret"}, content=b"pwn"
    )
    assert r.status_code in (400, 404)
    assert host_file.read_bytes() == b"host secret"
    archive = daemon.download_tar(sb["id"], "/sandbox/links")
    assert PASSWD not in archive and b"host secret" not in archive


def test_bad_archives_are_refused_before_anything_is_written(daemon, http, sb):
    link = tarfile.TarInfo("evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    cases = [
        tar_of(file_member("ok.txt", b"1"), file_member("../escape.txt", b"2")),
        tar_of(file_member("ok.txt", b"1"), file_member("/abs.txt", b"2")),
        tar_of(file_member("ok.txt", b"1"), (link, None)),
        tar_of(file_member("ok.txt", b"1"), (device, None)),
        b"this is not a tar archive" * 40,
    ]
    for i, archive in enumerate(cases):
        target = f"/sandbox/bad{i}"
        r = http.put(f"/sandboxes/{sb['id']}/tar", params={"path": target}, content=archive)
        assert r.status_code == 400, r.text
        exists = f"import os\nos.path.exists({target!r})"
        assert daemon.run_cell(sb["id"], exists).result["text/plain"] == "False"
    assert not os.path.exists("/sandbox/escape.txt") and not os.path.exists("/abs.txt")
