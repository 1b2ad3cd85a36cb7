"""The README opens with the two commands a new user types: one that sets
everything up and runs the main job, one that sets up if needed and runs the
whole test suite; CI runs exactly the second."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.match(r"```bash\n(.*?)```", text, re.S)
    assert block, "the README must start with a bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_the_demo_and_the_test_command():
    assert _first_commands() == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for script in ("demo.sh", "test.sh"):
        body = (ROOT / "scripts" / script).read_text()
        assert "python.sh" in body  # sets up when needed first


def test_ci_runs_the_readme_test_command():
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == _first_commands()[1]
    assert "--if-needed" in (ROOT / "scripts" / "python.sh").read_text()
