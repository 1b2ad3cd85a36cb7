"""userfaultfd: how it is reached, the features the kernel offers, the
write-protect of shared memfd mappings that live snapshots are built on,
and the filling of missing pages a child's placement uses."""

from __future__ import annotations

from .check import OK, Check


def checks() -> list[Check]:
    from ..vmm.probes import probe_userfaultfd

    u = probe_userfaultfd()
    features = set(u["features"])
    routes = (
        f"userfaultfd(2) {u['syscall_error'] or 'ok'}, "
        f"/dev/userfaultfd {u['devnode_error'] or 'ok'}"
    )
    if u["api_error"]:
        return [
            Check.of(
                "userfaultfd",
                False,
                f"{routes}, UFFDIO_API {u['api_error']}",
                "as root: sysctl vm.unprivileged_userfaultfd=1, or give the user "
                "read-write access to /dev/userfaultfd (Linux >= 6.1)",
                data=u,
            ),
            _fill(u),
        ]
    registered = not u["wp_register_error"] and not u["wp_protect_error"]
    wp_ok = "WP_HUGETLBFS_SHMEM" in features and registered
    steps = ", ".join(
        f"{step} {u[key] or 'ok'}"
        for step, key in (
            ("memfd", "wp_memfd_error"),
            ("UFFDIO_REGISTER_MODE_WP", "wp_register_error"),
            ("UFFDIO_WRITEPROTECT", "wp_protect_error"),
        )
    )
    return [
        Check(
            "userfaultfd",
            OK,
            f"{routes}; features: {', '.join(sorted(features))}",
            data=u,
        ),
        Check.of(
            "uffd_wp_shmem",
            wp_ok,
            "WP_HUGETLBFS_SHMEM "
            + ("offered" if "WP_HUGETLBFS_SHMEM" in features else "missing")
            + f"; write-protecting a shared memfd mapping: {steps}",
            "live snapshots need userfaultfd write-protect on shmem: Linux >= 5.19 "
            "built with CONFIG_PTE_MARKER_UFFD_WP",
            data={"negotiated": u["wp_negotiated"]},
        ),
        _feature("WP_UNPOPULATED", features, "Linux >= 6.4", required=True),
        _feature("WP_ASYNC", features, "Linux >= 6.7 (cheaper dirty tracking)", required=False),
        _fill(u),
    ]


def _fill(u: dict) -> Check:
    """A child's copied pages are filled by a userfaultfd of user-mode
    faults only (snap/snap_map.c); without one they are copied the slower
    way (docs/snapshots.md, "diff")."""
    return Check.of(
        "uffd_fill",
        u["fill_error"] is None,
        "filling a child's pages (user-mode-only userfaultfd, UFFDIO_COPY): "
        + (u["fill_error"] or "ok"),
        "Linux >= 5.11; without it a checkout copies its pages about twice as slowly",
        required=False,
    )


def _feature(name: str, features: set[str], fix: str, *, required: bool) -> Check:
    present = name in features
    return Check.of(
        f"uffd_{name.lower()}",
        present,
        f"{name} {'offered' if present else 'missing'}",
        fix,
        required=required,
    )
