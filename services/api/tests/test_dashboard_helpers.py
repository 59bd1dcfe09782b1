"""The dashboard's pure helpers (static/js), tested by node's own test runner.

The tests are JavaScript (services/api/dashboard/test); this runs them in the suite so
that `make test` fails when they do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"


def test_the_helpers_pass_under_node() -> None:
    node = shutil.which("node")
    assert node, "node is needed for the dashboard's tests (it installs the dashboard's libraries)"
    done = subprocess.run(
        [node, "--test", "test/"], cwd=DASHBOARD, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"^# pass (\d+)$", done.stdout, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", done.stdout, re.MULTILINE)
    assert passed, done.stdout[-2000:]
    assert failed, done.stdout[-2000:]
    assert int(failed[1]) == 0
    assert int(passed[1]) >= 13
