"""The guest sees only what CPython needs, read-only, plus its private
writable layer; it can't change host files or reach any network."""

from __future__ import annotations

import os
import site
import socket
import sys
import threading
from pathlib import Path

import pytest
from guest_helpers import run_ok, value

pytestmark = pytest.mark.kvm

CHECKOUT = Path(__file__).resolve().parents[1]


def guest_error(sb, code: str) -> str:
    r = sb.run(code)
    assert r.error is not None, f"expected an error from {code!r}"
    return r.error.ename


@pytest.fixture(scope="module")
def home_secret():
    secret = Path(os.path.expanduser("~")) / ".forkd-test-secret"
    secret.write_text("host secret")
    yield secret
    secret.unlink()


@pytest.mark.parametrize(
    "path",
    [
        "/etc/shadow",
        "/etc/gshadow",
        str(CHECKOUT),
        str(CHECKOUT / "pyproject.toml"),
        "/proc/1/environ",
        "/home",
        "/var/log",
        "/usr/sbin/useradd",  # /usr/sbin holds only programs a link leads to (program_trees)
        "/etc/ssh",
    ],
)
def test_host_paths_outside_the_view_are_invisible(sandbox, path):
    assert guest_error(sandbox, f"open({path!r}, 'rb').read()") in (
        "FileNotFoundError",
        "PermissionError",
        "IsADirectoryError",
    )
    assert value(sandbox, f"__import__('os').path.exists({path!r})") is False


def test_home_directory_shows_only_the_way_to_the_interpreter(sandbox, home_secret):
    assert guest_error(sandbox, f"open({str(home_secret)!r}).read()") == "FileNotFoundError"
    home = os.path.expanduser("~")
    listed = value(sandbox, f"sorted(__import__('os').listdir({home!r}))")
    # Only the first component of the paths down to the interpreter and to
    # the user's site-packages (when that exists: it is on sys.path).
    ways = [os.path.realpath(sys.prefix)]
    user_site = site.getusersitepackages()
    if os.path.isdir(user_site):
        ways.append(os.path.realpath(user_site))
    expected = {w[len(home) + 1 :].split("/")[0] for w in ways if w.startswith(home + "/")}
    assert listed == sorted(expected)
    assert home_secret.name not in listed


def test_escape_through_dotdot_and_symlinks(sandbox):
    run_ok(
        sandbox,
        "import os\nos.symlink('/etc/shadow', '/tmp/shadow-link')\n"
        "os.symlink('/', '/tmp/root-link')",
    )
    assert guest_error(sandbox, "open('/tmp/shadow-link').read()") in (
        "FileNotFoundError",
        "PermissionError",
    )
    assert guest_error(sandbox, "open('/tmp/root-link/etc/shadow').read()") in (
        "FileNotFoundError",
        "PermissionError",
    )
    assert guest_error(sandbox, "open('/tmp/../../etc/shadow').read()") in (
        "FileNotFoundError",
        "PermissionError",
    )


def test_guest_writes_never_reach_host_files(sandbox, tmp_path):
    prefix = Path(os.__file__).parent
    target = prefix / "forkd_probe_should_not_exist.txt"
    assert guest_error(sandbox, f"open({str(target)!r}, 'w').write('x')") in (
        "PermissionError",
        "OSError",
        "FileNotFoundError",
    )
    assert not target.exists()
    victim = Path(os.__file__)
    before = victim.read_bytes()
    for code in (
        f"open({str(victim)!r}, 'r+b')",
        f"__import__('os').remove({str(victim)!r})",
        f"__import__('os').rename({str(victim)!r}, '/tmp/x')",
        f"__import__('os').chmod({str(victim)!r}, 0o777)",
    ):
        guest_error(sandbox, code)
    assert victim.read_bytes() == before
    # Same-named files in the guest's /tmp are not the host's /tmp.
    run_ok(sandbox, "open('/tmp/forkd-guest-only.txt', 'w').write('guest')")
    assert not Path("/tmp/forkd-guest-only.txt").exists()


def test_no_socket_reaches_the_host(sandbox):
    """The guest's sockets live in the sandbox (tests/test_vmm_sockets.py
    has the rest): the host's loopback listener is never reached."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    t = threading.Thread(target=lambda: _accept(server, accepted))
    t.start()
    code = f"""
import socket
errors = []
for attempt in (lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2),
                lambda: socket.create_connection(("192.0.2.1", 80), timeout=2),
                lambda: socket.getaddrinfo("example.com", 80)):
    try:
        attempt()
        errors.append(None)
    except OSError as e:
        errors.append(type(e).__name__)
"""
    run_ok(sandbox, code)
    t.join()
    server.close()
    assert all(value(sandbox, "errors")), value(sandbox, "errors")
    assert accepted == []


def _accept(server, accepted):
    try:
        accepted.append(server.accept())
    except OSError:
        pass
