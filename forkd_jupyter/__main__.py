"""`python -m forkd_jupyter`: the same as the `forkd-jupyter` command."""

import sys

from .cli import main

sys.exit(main())
