#!/usr/bin/env bash
# Installs forkd-jupyter for development and tests: `bash scripts/install.sh`.
# With --if-needed it returns at once when an earlier install of the same
# sources into the same interpreter is still in place (build/install-stamp:
# the interpreter and a hash of everything the install builds from), which is
# how scripts/demo.sh and scripts/test.sh set up only when needed.
#
# Idempotent. On Debian 12 as root it first installs the missing system
# packages (apt is skipped when nothing is missing or when not root); then it
# installs the package in editable mode with its test extras into
# ${PYTHON:-python3}, which compiles the VMM's C core through the build hook
# (hatch_build.py). The interpreter is resolved to its real executable, so a
# shim (pyenv's python3 is a shell script) installs into the Python it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'install.sh: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

if_needed=false
case "${1:-}" in
--if-needed) if_needed=true ;;
"") ;;
*)
    log "usage: bash scripts/install.sh [--if-needed]"
    exit 2
    ;;
esac

STAMP=build/install-stamp
# Everything the install builds from: dependencies, build hooks, this script,
# the C core and the labextension's sources.
inputs_hash() {
    find pyproject.toml hatch_build.py scripts/install.sh forkd_jupyter/vmm/csrc forkd_jupyter/vmm/vdso forkd_jupyter/vmm/_build.py \
        labextension/src labextension/style labextension/package.json labextension/tsconfig.json \
        labextension/yarn.lock labextension/build_labextension.py -type f 2>/dev/null |
        LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
}
if $if_needed && [ -f "$STAMP" ]; then
    stamp_python="$(sed -n 's/^python=//p' "$STAMP")"
    stamp_inputs="$(sed -n 's/^inputs=//p' "$STAMP")"
    if [ -x "$stamp_python" ] && [ "$stamp_inputs" = "$(inputs_hash)" ] &&
        "$stamp_python" -c 'import forkd_jupyter.vmm._ffi' >/dev/null 2>&1; then
        exit 0
    fi
fi

# --- system packages ---------------------------------------------------------
# Debian packages the build and the tests need, each only when missing.
apt_missing=()
python_cmd="${PYTHON:-python3}"
if ! have "$python_cmd"; then
    apt_missing+=(python3 python3-pip python3-dev)
fi
have gcc || apt_missing+=(build-essential)
# The labextension's build runs on node (jlpm comes with JupyterLab); the UI
# tests drive the system chromium.
have node || apt_missing+=(nodejs)
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)

apt_install() {
    [ "$#" -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ] || ! have apt-get; then
        log "not root or no apt-get: please install $*"
        return 0
    fi
    log "apt-get install $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
apt_install "${apt_missing[@]}"

PYTHON="$("$python_cmd" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
log "using $PYTHON"
# Console scripts the steps below run (jupyter-builder, behind `jupyter
# labextension develop`) live beside the interpreter, which a version
# manager's PATH may not list.
export PATH="$(dirname "$PYTHON"):$PATH"

# The system interpreter's own pieces, only when this is Debian's Python.
apt_missing=()
py_include="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
case "$PYTHON" in
/usr/bin/*)
    [ -f "$py_include/Python.h" ] || apt_missing+=(python3-dev)
    "$PYTHON" -m pip --version >/dev/null 2>&1 || apt_missing+=(python3-pip)
    have python || apt_missing+=(python-is-python3) # the test command runs `python`
    ;;
esac
apt_install "${apt_missing[@]}"
[ -f "$py_include/Python.h" ] || log "warning: $py_include/Python.h is missing; the C core will not compile"

# --- the Python package --------------------------------------------------------
pip_args=(--quiet)
[ "$(id -u)" != 0 ] || pip_args+=(--root-user-action=ignore)
# Debian marks its Python as externally managed (PEP 668); this machine-wide
# install is the one the README's test command uses.
if "$PYTHON" -c 'import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")))'; then
    pip_args+=(--break-system-packages)
fi
# Editable installs through a build backend need pip >= 21.3 (PEP 660).
if ! "$PYTHON" -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (21, 3))'; then
    "$PYTHON" -m pip install "${pip_args[@]}" --upgrade "pip>=21.3"
fi
# A development symlink left by an earlier run (below) would let pip's
# uninstall of the old version reach through it into the build output.
labext_link="$("$PYTHON" -c 'import os, sys; print(os.path.join(sys.prefix, "share", "jupyter", "labextensions", "forkd-jupyter"))')"
[ ! -L "$labext_link" ] || rm "$labext_link"
# The build hooks compile the C core and, when labextension/src changed,
# build the labextension (jlpm install + build into forkd_jupyter/labext/static).
"$PYTHON" -m pip install "${pip_args[@]}" -e ".[test]"

# --- JupyterLab extension --------------------------------------------------------
# pip installed a copy of the built labextension and the config enabling the
# server extension (shared-data). For this editable install, point JupyterLab
# at the build output itself so `jlpm build` in labextension/ takes effect on
# reload.
develop_log="$("$PYTHON" -m jupyter labextension develop --overwrite . 2>&1)" || {
    log "jupyter labextension develop failed: $develop_log"
    exit 1
}

# --- check ---------------------------------------------------------------------
"$PYTHON" -c 'import forkd_jupyter.vmm._ffi' || {
    log "the compiled core does not import"
    exit 1
}
# (Listed first, grepped after: grep -q closing the pipe early would fail
# the lister under pipefail.)
labextensions="$("$PYTHON" -m jupyter labextension list 2>&1)"
grep -Eq 'forkd-jupyter .*enabled.*OK' <<<"$labextensions" || {
    log "the forkd-jupyter labextension is not enabled: $labextensions"
    exit 1
}
server_extensions="$("$PYTHON" -m jupyter server extension list 2>&1)"
grep -Eq 'forkd_jupyter\.labext .*enabled' <<<"$server_extensions" || {
    log "the forkd_jupyter.labext server extension is not enabled: $server_extensions"
    exit 1
}
# pyenv reaches new console scripts (forkd-jupyter, jupyter) through shims
# made by a rehash, which pip run by the real interpreter does not trigger.
if have pyenv; then
    pyenv rehash || log "warning: pyenv rehash failed; forkd-jupyter may not be on PATH"
fi
test_python="$(python -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null || true)"
if [ "$test_python" != "$PYTHON" ]; then
    log "warning: \`python\` on PATH is ${test_python:-missing}, not $PYTHON: run the tests with $PYTHON -m pytest"
fi
mkdir -p build
printf 'python=%s\ninputs=%s\n' "$PYTHON" "$(inputs_hash)" >"$STAMP"
log "forkd-jupyter installed for $PYTHON; check this machine with: forkd-jupyter doctor"
