#!/usr/bin/env bash
# The whole test suite, from a fresh clone: `bash scripts/test.sh`. Installs
# everything when needed (scripts/install.sh), then runs pytest with the
# interpreter it installed into. Arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/python.sh"
exec "$PYTHON" -m pytest "$@"
