"""Input validation and the file routes over real HTTP: every bad input is
a 400 problem naming the field, decided before anything happens; the
top-level folders are addressable; stat, delete, mkdir, move and recursive
listings with a limit."""

from __future__ import annotations

import io
import tarfile
import time

import pytest

pytestmark = pytest.mark.kvm


def refused(response, field: str | None = None) -> dict:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    if field is not None:
        assert doc.get("field") == field, doc
        assert field in doc["detail"], doc
    return doc


def guest(daemon, sb: str, expr: str) -> str:
    return daemon.run_cell(sb, expr).result["text/plain"]


# ------------------------------------------------------------ validation
@pytest.mark.parametrize("value", [-1, 0, 9223372037, 1e300, True, "10"])
def test_bad_timeouts_are_400_naming_the_field(http, sb, value):
    refused(http.post(f"/sandboxes/{sb}/run", json={"code": "1", "timeout": value}), "timeout")


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_non_standard_json_numbers_are_refused(http, sb, token):
    body = f'{{"code": "1", "timeout": {token}}}'.encode()
    r = http.post(
        f"/sandboxes/{sb}/run", content=body, headers={"Content-Type": "application/json"}
    )
    refused(r, "body")


def test_spawn_fields_are_checked_before_spawning(daemon, http):
    before = len(daemon.list_sandboxes())
    refused(http.post("/sandboxes", json={"n": "2"}), "n")
    refused(http.post("/sandboxes", json={"n": 0}), "n")
    refused(http.post("/sandboxes", json={"memory_limit_mib": 10}), "memory_limit_mib")
    refused(http.post("/sandboxes", json={"name": " padded "}), "name")
    refused(http.post("/sandboxes", json={"name": "sb-12"}), "name")  # shaped like an id
    refused(http.post("/sandboxes", json={"name": "two", "n": 2}), "name")
    refused(http.post("/sandboxes", json={"memroy_limit_mib": 256}), "memroy_limit_mib")
    refused(http.post("/sandboxes", json={"live_fork": "yes"}), "live_fork")
    assert len(daemon.list_sandboxes()) == before


def test_bad_paths_are_400_naming_the_argument(daemon, http, sb):
    deep = "/".join(["a"] * 1000)  # 1,999 characters, 1,000 levels
    refused(http.put(f"/sandboxes/{sb}/files", params={"path": deep}, content=b"x"), "path")
    refused(http.put(f"/sandboxes/{sb}/files", params={"path": "a\x00b"}, content=b"x"), "path")
    refused(http.get(f"/sandboxes/{sb}/files", params={"path": "x" * 5000}), "path")
    assert guest(daemon, sb, "import os; os.path.exists('/sandbox/a b')") == "False"


def test_whitespace_in_a_path_is_kept(daemon, http, sb):
    r = http.put(f"/sandboxes/{sb}/files", params={"path": " spaced.txt "}, content=b"s")
    assert r.status_code == 201 and r.json()["path"] == "/sandbox/ spaced.txt "
    assert guest(daemon, sb, "open('/sandbox/ spaced.txt ').read()") == "'s'"


# ------------------------------------------------------ top-level folders
@pytest.mark.parametrize("path", ["/sandbox", "/tmp", ".", "/sandbox/"])
def test_the_top_level_folders_can_be_listed(daemon, http, sb, path):
    daemon.run_cell(
        sb, "open('/sandbox/top.txt','w').write('t'); open('/tmp/top.txt','w').write('t')"
    )
    r = http.get(f"/sandboxes/{sb}/files", params={"path": path})
    assert r.status_code == 200, r.text
    names = {e["name"] for e in r.json()["entries"]}
    assert "top.txt" in names and "sandbox" not in names and "tmp" not in names


def test_a_top_level_folder_lists_while_a_cell_runs(daemon, http, sb):
    daemon.run_cell(sb, "open('/sandbox/during.txt','w').write('d')")
    run = http.post(f"/sandboxes/{sb}/runs", json={"code": "import time\ntime.sleep(2)"}).json()
    try:
        r = http.get(f"/sandboxes/{sb}/files", params={"path": "/sandbox"})
        assert r.status_code == 200, r.text
        assert "during.txt" in {e["name"] for e in r.json()["entries"]}
        assert http.get(f"/runs/{run['id']}").json()["status"] == "running"
        stat = http.get(f"/sandboxes/{sb}/stat", params={"path": "/sandbox"})
        assert stat.status_code == 200 and stat.json()["type"] == "dir", stat.text
    finally:
        deadline = time.monotonic() + 30
        while http.get(f"/runs/{run['id']}").json()["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_a_tar_into_a_top_level_folder_makes_no_stray_folder(daemon, http, sb):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("from-tar.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"ok"))
    r = http.put(f"/sandboxes/{sb}/tar", params={"path": "/sandbox"}, content=out.getvalue())
    assert r.status_code == 201 and r.json()["files"] == ["/sandbox/from-tar.txt"]
    assert guest(daemon, sb, "import os; os.path.exists('/sandbox/sandbox')") == "False"
    assert guest(daemon, sb, "open('/sandbox/from-tar.txt').read()") == "'ok'"
    stat = http.get(f"/sandboxes/{sb}/stat", params={"path": "/sandbox"}).json()
    assert stat["type"] == "dir"


# ---------------------------------------------------------- file routes
def test_stat_mkdir_move_delete(daemon, http, sb):
    base = f"/sandboxes/{sb}"
    assert http.post(f"{base}/mkdir", json={"path": "fs/a/b", "parents": True}).status_code == 201
    assert http.post(f"{base}/mkdir", json={"path": "fs/a"}).status_code == 409  # exists
    assert (
        http.put(f"{base}/files", params={"path": "fs/a/b/f.txt"}, content=b"12345").status_code
        == 201
    )
    st = http.get(f"{base}/stat", params={"path": "fs/a/b/f.txt"}).json()
    assert st["type"] == "file" and st["size"] == 5 and st["path"] == "/sandbox/fs/a/b/f.txt"
    assert http.get(f"{base}/stat", params={"path": "fs/none"}).status_code == 404
    moved = http.post(f"{base}/move", json={"source": "fs/a", "destination": "/tmp/moved"})
    assert moved.status_code == 200, moved.text
    assert guest(daemon, sb, "open('/tmp/moved/b/f.txt').read()") == "'12345'"
    assert guest(daemon, sb, "import os; os.path.exists('/sandbox/fs/a')") == "False"
    clash = http.post(f"{base}/move", json={"source": "/tmp/moved", "destination": "/tmp/moved/b"})
    refused(clash, "destination")
    assert (
        http.delete(f"{base}/files", params={"path": "/tmp/moved"}).status_code == 409
    )  # not empty
    r = http.delete(f"{base}/files", params={"path": "/tmp/moved", "recursive": "true"})
    assert r.json()["deleted"][-1] == "/tmp/moved"
    assert guest(daemon, sb, "import os; os.path.exists('/tmp/moved')") == "False"
    assert http.delete(f"{base}/files", params={"path": "/sandbox"}).status_code == 400


def test_recursive_listing_with_a_limit(daemon, http, sb):
    daemon.run_cell(
        sb,
        "import os\nfor i in range(5):\n    os.makedirs(f'/sandbox/tree/d{i}', exist_ok=True)\n"
        "    open(f'/sandbox/tree/d{i}/f', 'w').write('x')",
    )
    full = http.get(f"/sandboxes/{sb}/files", params={"path": "tree", "recursive": "true"}).json()
    names = {e["name"] for e in full["entries"]}
    assert {f"d{i}/f" for i in range(5)} <= names and full["truncated"] is False
    cut = http.get(
        f"/sandboxes/{sb}/files", params={"path": "tree", "recursive": "true", "limit": "3"}
    ).json()
    assert len(cut["entries"]) == 3 and cut["truncated"] is True
    refused(http.get(f"/sandboxes/{sb}/files", params={"path": "tree", "limit": "0"}), "limit")


def test_the_sdk_file_calls(daemon, sb):
    from forkd_jupyter.client import Conflict, TooLarge

    assert daemon.mkdir(sb, "sdk/x/y", parents=True) == "/sandbox/sdk/x/y"
    daemon.write_file(sb, "sdk/x/y/z.txt", b"zz")
    assert daemon.stat(sb, "sdk/x/y/z.txt")["size"] == 2
    daemon.move(sb, "sdk/x", "sdk/w")
    names = {e["name"] for e in daemon.list_dir(sb, "sdk", recursive=True)}
    assert names == {"w", "w/y", "w/y/z.txt"}
    assert len(daemon.list_dir(sb, "sdk", recursive=True, limit=1)) == 1
    with pytest.raises(Conflict):
        daemon.remove(sb, "sdk/w")
    assert daemon.remove(sb, "sdk", recursive=True)[-1] == "/sandbox/sdk"
    with pytest.raises(TooLarge):  # more than the sandbox's 256 MiB layer holds
        daemon.write_file(sb, "big.bin", iter([bytes(1 << 20)] * 300))
    assert daemon.list_dir(sb, "/sandbox") is not None
    assert "big.bin" not in {e["name"] for e in daemon.list_dir(sb, "/sandbox")}
