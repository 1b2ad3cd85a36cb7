#!/usr/bin/env bash
# Installs everything forkd-jupyter needs on a Debian 12 machine (idempotent):
# system packages for the tests (as root), then the package itself in
# editable mode, which compiles the VMM's C core through the build hook.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
# Resolve shims (pyenv's python3 is a shell script) to the real interpreter.
PYTHON="$("$PYTHON" -c 'import sys, os; print(os.path.realpath(sys.executable))')"

need_apt=()
command -v gcc >/dev/null || need_apt+=(build-essential)
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
    else
        echo "install.sh: please install: ${need_apt[*]}" >&2
    fi
fi

"$PYTHON" -m pip install --quiet --upgrade pip
"$PYTHON" -m pip install --quiet -e ".[test]"
# The labextension build joins here once it exists (JupyterLab's toolchain).
"$PYTHON" -c "import forkd_jupyter.vmm._ffi" && echo "forkd-jupyter installed for $PYTHON"
