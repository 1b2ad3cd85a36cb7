# Sourced by scripts/demo.sh and scripts/test.sh: sets up when needed, then
# sets PYTHON to the interpreter the install went into.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install.sh --if-needed
PYTHON="$(sed -n 's/^python=//p' build/install-stamp)"
