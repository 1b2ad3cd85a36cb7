"""The trees the system's programs live in, beyond the directories their
names are in: Debian installs many programs as links from /usr/bin or
/etc/alternatives into a package's own directory (java ->
/usr/lib/jvm/java-17-openjdk-amd64/bin/java, npm -> /usr/lib/node_modules,
pidof -> /sbin/killall5), and some of those trees link their configuration
from /etc (the JVM's jvm.cfg and java.security from /etc/java-17-openjdk).
Without these a sandbox finds the name and not the program.

What is added, read-only, to a sandbox's view (guest_env.read_only_roots):

- for each link in a program directory whose target is an executable
  regular file outside the view's roots: the target's package directory
  (the first component under /usr/lib, /usr/libexec, /usr/share, /usr/local
  /lib, /usr/local/share or /opt) and, for /usr/lib/NAME, its data in
  /usr/share/NAME, else the file itself;
- for each such program: the /etc/NAME directories (a package's
  configuration, never a single file of /etc) that links near it
  point into (in the first two levels below the directory holding its
  bin/: the JVM's conf/ and lib/), never the names in PRIVATE_ETC;

and only what root owns and no one else may write (the system's own files,
never a user's). The result is kept while the program directories are
unchanged (their modification times: installing or removing a package
changes them)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from ..python_env import link_chain, path_under

PROGRAM_DIRS = ("/usr/bin", "/bin", "/usr/local/bin", "/etc/alternatives")
TREE_PREFIXES = (
    "/usr/lib/",
    "/usr/libexec/",
    "/usr/share/",
    "/usr/local/lib/",
    "/usr/local/share/",
    "/opt/",
)
# /etc entries that hold secrets or the machine's accounts and policy: never
# a root, whatever links into them.
PRIVATE_ETC = frozenset(
    {
        "ssh", "ssl", "shadow", "shadow-", "gshadow", "gshadow-", "passwd", "passwd-",
        "group", "group-", "sudoers", "sudoers.d", "security", "pam.d", "krb5.keytab",
        "credstore", "credstore.encrypted", "machine-id", "docker", "containerd",
        "kubernetes", "wireguard", "NetworkManager", "letsencrypt", "pki",
    }
)  # fmt: skip
HOME_DEPTH = 2  # levels below a program's home searched for links into /etc
HOME_ENTRIES = 5000  # entries looked at per home, at most

_cache: dict[tuple, list[str]] = {}


def _system_owned(path: str) -> bool:
    """Root's, and writable by no one else (group or others)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _package_root(target: str) -> str:
    for prefix in TREE_PREFIXES:
        if target.startswith(prefix):
            return prefix + target[len(prefix) :].split("/", 1)[0]
    return target


def _data_dir(tree: str) -> str | None:
    """A package's architecture-independent files beside its /usr/lib
    directory, by Debian's layout (/usr/lib/postgresql: /usr/share/postgresql)."""
    if not tree.startswith("/usr/lib/"):
        return None
    data = "/usr/share/" + tree[len("/usr/lib/") :]
    return data if os.path.isdir(data) else None


def _links(directory: str) -> Iterator[str]:
    try:
        with os.scandir(directory) as entries:
            for e in entries:
                if e.is_symlink():
                    yield e.path
    except OSError:
        return


def _etc_targets(home: str) -> Iterator[str]:
    """/etc/NAME directories links in home's first HOME_DEPTH levels lead to."""
    seen = 0
    base = home.rstrip("/").count("/")
    for top, dirs, files in os.walk(home):
        if top.count("/") - base >= HOME_DEPTH - 1:
            dirs[:] = []
        for name in (*dirs, *files):
            seen += 1
            path = os.path.join(top, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if target.startswith("/etc/"):
                    yield "/etc/" + target[len("/etc/") :].split("/", 1)[0]
        if seen > HOME_ENTRIES:
            return


def _discover(roots: list[str]) -> list[str]:
    visible = [*roots, *map(os.path.realpath, roots)]
    found: list[str] = []
    homes: set[str] = set()  # the directories holding a program's bin/, in package directories
    scanned: set[str] = set()
    for directory in PROGRAM_DIRS:
        if os.path.realpath(directory) in scanned:
            continue  # /bin, a link to /usr/bin on a merged-/usr system
        scanned.add(os.path.realpath(directory))
        for link in _links(directory):
            # The guest follows the link's own text, hop by hop: the last hop
            # is the path it opens (/sbin/killall5, not /usr/sbin/killall5).
            last = link_chain(link)[-1]
            real = os.path.realpath(last)
            if path_under(last, visible) or not os.path.isfile(real):
                continue
            if not os.access(real, os.X_OK) or not _system_owned(real):
                continue
            tree = _package_root(last)
            if tree == last or not _system_owned(tree):
                tree = last
            else:  # each program's own home: two JDKs share /usr/lib/jvm
                homes.add(os.path.dirname(os.path.dirname(real)))
            if path_under(last, found):
                continue
            found.append(tree)
            data = _data_dir(tree) if tree != last else None
            if data and data not in found and _system_owned(data):
                found.append(data)
    for home in sorted(homes):
        for etc in _etc_targets(home):
            name = etc[len("/etc/") :]
            if name in PRIVATE_ETC or etc in found or not os.path.isdir(etc):
                continue
            if _system_owned(etc):
                found.append(etc)
    return found


def program_trees(roots: list[str]) -> list[str]:
    """What the system's programs need beyond roots (see the module)."""
    key = (tuple(roots), *(_mtime(d) for d in PROGRAM_DIRS))
    if key not in _cache:
        if len(_cache) >= 8:  # environments seen lately
            _cache.clear()
        _cache[key] = _discover(roots)
    return list(_cache[key])


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0
