"""What a notebook user does in a sandbox works: numpy, the standard
library, files in /tmp and the working directory, sleeping, processes info."""

from __future__ import annotations

import os
import site

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm


def test_numpy_linear_algebra(sandbox):
    code = (
        "import numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        "a = rng.random((200, 200)) + 200 * np.eye(200)\n"
        "x = np.linalg.solve(a, np.ones(200))\n"
        "float(np.abs(a @ x - 1).max())"
    )
    assert float(run_ok(sandbox, code).result["text/plain"]) < 1e-9
    assert value(
        sandbox, "float(np.linalg.det(np.array([[2.0, 1.0], [1.0, 3.0]])))"
    ) == pytest.approx(5.0)


def test_standard_library_modules(sandbox):
    code = """
import json, re, decimal, datetime, random, hashlib, zlib, pickle, csv, pathlib, io
checks = {
    "json": json.loads(json.dumps({"a": [1, 2]})) == {"a": [1, 2]},
    "re": re.sub(r"(\\d+)", r"<\\1>", "a12b") == "a<12>b",
    "decimal": str(decimal.Decimal("0.1") + decimal.Decimal("0.2")) == "0.3",
    "datetime": datetime.date(2024, 2, 28) + datetime.timedelta(days=1)
    == datetime.date(2024, 2, 29),
    "random": random.Random(1).random() == random.Random(1).random(),
    "hashlib": hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf"),
    "zlib": zlib.decompress(zlib.compress(b"x" * 1000)) == b"x" * 1000,
    "pickle": pickle.loads(pickle.dumps({1, 2})) == {1, 2},
    "csv": list(csv.reader(io.StringIO("a,b\\n1,2\\n"))) == [["a", "b"], ["1", "2"]],
    "pathlib": pathlib.PurePosixPath("/a/b").name == "b",
}
checks
"""
    checks = run_ok(sandbox, code) and value(sandbox, "checks")
    assert checks == {k: True for k in checks}


def test_sqlite_on_a_file_in_tmp(sandbox):
    code = """
import sqlite3
con = sqlite3.connect("/tmp/t.db")
con.execute("create table t (k integer primary key, v text)")
con.executemany("insert into t (v) values (?)", [(str(i),) for i in range(500)])
con.commit()
con.close()
con = sqlite3.connect("/tmp/t.db")
rows = con.execute("select count(*), sum(cast(v as integer)) from t").fetchone()
con.close()
"""
    run_ok(sandbox, code)
    assert value(sandbox, "rows") == (500, sum(range(500)))


def test_files_in_tmp_and_working_directory(sandbox):
    code = """
import os
os.makedirs("data/sub", exist_ok=True)
with open("data/sub/a.txt", "w") as f:
    f.write("hello")
with open("/tmp/b.bin", "wb") as f:
    f.write(bytes(range(256)) * 1000)
os.rename("data/sub/a.txt", "data/a.txt")
files = (os.getcwd(), sorted(os.listdir("data")), open("data/a.txt").read(),
         len(open("/tmp/b.bin", "rb").read()), os.path.getsize("/tmp/b.bin"))
"""
    run_ok(sandbox, code)
    assert value(sandbox, "files") == ("/sandbox", ["a.txt", "sub"], "hello", 256000, 256000)


def test_site_packages_can_be_listed(sandbox):
    packages = [p for p in site.getsitepackages() if os.path.isdir(p)]
    listed = value(sandbox, f"sorted(__import__('os').listdir({packages[0]!r}))")
    assert "numpy" in listed
    assert listed == sorted(os.listdir(packages[0]))


def test_sleep_pid_and_cpu_count(sandbox):
    code = "import os, time\nt = time.monotonic(); time.sleep(0.3); slept = time.monotonic() - t"
    run_ok(sandbox, code)
    assert 0.29 <= value(sandbox, "slept") < 2
    assert value(sandbox, "os.getpid()") == sandbox.guest_pid
    assert value(sandbox, "os.cpu_count()") == os.cpu_count()  # threads run on every core
