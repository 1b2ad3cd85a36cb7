"""A hostile client against a real daemon (TCP with a token, and its unix
socket): huge bodies without a token, bodies over a route's limit, a tar
bomb, an overlong URL. Through all of them the daemon's resident memory
(from /proc/<pid>/status) stays under RSS_CAP_MIB, /health keeps
answering, and nothing is written to the sandbox."""

from __future__ import annotations

import socket
import tarfile
import threading
import time
import zlib
from urllib.parse import urlparse

import httpx
import pytest
from daemon_private import PrivateDaemon, RssWatch

pytestmark = pytest.mark.kvm

TOKEN = "hostile-test-token"
RSS_CAP_MIB = 300
MIB = 1 << 20


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    daemon = PrivateDaemon(tmp_path_factory.mktemp("hostile"), token=TOKEN, tcp=True).start()
    with daemon.tcp_client(TOKEN) as c:
        [sb] = c.post("/sandboxes", json={"memory_limit_mib": 256}).json()["sandboxes"]
    yield daemon, sb["id"]
    daemon.stop()


def raw_request(url: str, head: str, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Sends only a request's head (no body) and reads the answer: what a
    daemon that decides before reading the body sends at once."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout) as s:
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode(errors="replace").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(lines[0].split()[1]), headers, rest


def zeros(total: int, chunk: int = MIB):
    block = bytes(chunk)
    for _ in range(total // chunk):
        yield block


class HealthProbe:
    """Polls /health on the unix socket; ``worst`` is the slowest answer."""

    def __init__(self, daemon: PrivateDaemon) -> None:
        self.daemon, self.worst, self.answers = daemon, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.daemon.unix_client(timeout=30) as c:
            while not self._stop.is_set():
                t0 = time.monotonic()
                assert c.get("/health").status_code == 200
                self.worst = max(self.worst, time.monotonic() - t0)
                self.answers += 1
                self._stop.wait(0.05)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_no_token_is_refused_before_the_body_is_read(target):
    daemon, sb = target
    head = (
        f"PUT /v1/sandboxes/{sb}/files?path=big HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 419430400\r\n\r\n"
    )
    t0 = time.monotonic()
    status, headers, body = raw_request(daemon.url, head)
    assert status == 401 and time.monotonic() - t0 < 3
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"].lower().startswith("bearer")


def test_huge_bodies_without_a_token_cost_no_memory(target):
    daemon, sb = target
    answers = []

    def attack():
        with httpx.Client(base_url=daemon.url + "/v1", timeout=60) as c:
            try:
                r = c.put(f"/sandboxes/{sb}/files", params={"path": "x"}, content=zeros(200 * MIB))
                answers.append(r.status_code)
            except httpx.TransportError:
                answers.append("closed")  # the daemon hung up after its 401

    with RssWatch(daemon) as rss:
        threads = [threading.Thread(target=attack) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"2 x 200 MiB without a token: RSS peak {rss.peak:.0f} MiB")
    assert all(a in (401, "closed") for a in answers), answers
    assert rss.peak < RSS_CAP_MIB, f"daemon RSS peaked at {rss.peak:.0f} MiB"


def test_a_declared_length_over_the_limit_is_413_at_once(target):
    daemon, sb = target
    cases = ((f"sandboxes/{sb}/pull", 5 * MIB), (f"sandboxes/{sb}/files?path=a", 2 << 30))
    for path, length in cases:
        head = (
            f"{'PUT' if 'files' in path else 'POST'} /v1/{path} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {length}\r\n\r\n"
        )
        status, headers, body = raw_request(daemon.url, head)
        assert status == 413, body
        assert b"urn:forkd-jupyter:problem:too-large" in body


def test_a_chunked_body_over_the_limit_is_cut_at_the_limit(target):
    daemon, sb = target
    with daemon.tcp_client(TOKEN) as c, RssWatch(daemon) as rss:
        try:
            r = c.post(f"/sandboxes/{sb}/pull", content=zeros(64 * MIB, 64 << 10))
            assert r.status_code == 413, r.text
        except httpx.TransportError:
            pass  # the daemon answered 413 and closed before the client finished sending
    assert rss.peak < RSS_CAP_MIB


def gzip_tar(members: list[tuple[str, int]]) -> bytes:
    """A gzip'd tar of zero-filled members, built a chunk at a time (run
    length encoding: about 1 KiB of gzip per MiB of zeros)."""
    gz = zlib.compressobj(9, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    parts = []
    for name, size in members:
        info = tarfile.TarInfo(name)
        info.size = size
        parts.append(gz.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        parts += [gz.compress(block) for block in zeros(size)]
        parts.append(gz.compress(bytes(-size % 512)))
    parts.append(gz.compress(bytes(1024)))
    parts.append(gz.flush())
    return b"".join(parts)


@pytest.mark.parametrize(
    "members",
    [[("bomb/zeros", 1 << 30)], [(f"bomb/part-{i}", MIB) for i in range(300)]],
    ids=["one-1GiB-member", "300-members-of-1MiB"],
)
def test_tar_bomb_writes_nothing_and_keeps_the_daemon_responsive(target, members):
    daemon, sb = target
    archive = gzip_tar(members)
    assert len(archive) < 2 * MIB
    with daemon.tcp_client(TOKEN) as c, RssWatch(daemon) as rss, HealthProbe(daemon) as health:
        r = c.put(f"/sandboxes/{sb}/tar", params={"path": "/sandbox/up"}, content=archive)
        time.sleep(0.2)
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    with daemon.tcp_client(TOKEN) as c:
        assert c.get(f"/sandboxes/{sb}/files", params={"path": "/sandbox/up"}).status_code == 404
    print(f"tar bomb: RSS peak {rss.peak:.0f} MiB, slowest /health {health.worst * 1000:.0f} ms")
    assert rss.peak < RSS_CAP_MIB, f"daemon RSS peaked at {rss.peak:.0f} MiB"
    assert health.answers > 0 and health.worst < 1.0, f"/health took {health.worst:.2f} s"


def test_an_overlong_url_is_414(target):
    daemon, sb = target
    head = (
        f"GET /v1/sandboxes/{sb}/files?path={'a' * 70_000} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n"
    )
    status, headers, body = raw_request(daemon.url, head)
    assert status == 414, body
    assert headers["content-type"] == "application/problem+json"
