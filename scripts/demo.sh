#!/usr/bin/env bash
# The main job, from a fresh clone: `bash scripts/demo.sh`. Installs
# everything when needed (scripts/install.sh), then runs `forkd-jupyter demo`
# (spawn a sandbox, load data, branch it live three ways, print the tree and
# the pause timings). Arguments go to the demo.
set -euo pipefail
source "$(dirname "$0")/python.sh"
exec "$PYTHON" -m forkd_jupyter demo "$@"
