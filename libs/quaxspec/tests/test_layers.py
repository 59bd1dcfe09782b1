"""The library's layers (README, "Layout"): each module imports only quaxspec modules of its
own layer or the layers before it, and only the third-party packages its layer allows.

A reader of the topics (the API, the archiver, a notebook) needs the formats alone; they
must never pull in scipy, the FFT kernel (pyFFTW, numba) or pyarrow.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import quaxspec

PACKAGE = Path(quaxspec.__file__).parent
#: Layer by layer: its modules and the third-party packages they may import.
LAYERS: list[tuple[str, set[str], set[str]]] = [
    ("formats",
     {"daq", "psd", "moments", "ranges", "messages", "findings", "spectra", "progress",
      "topics", "limits", "strictjson"},
     {"numpy", "orjson"}),
    ("plumbing", {"settings", "logs", "deadletter"},
     {"pydantic", "pydantic_settings", "structlog"}),
    ("physics", {"lineshape", "analysis", "synthetic"}, {"scipy"}),
    ("accumulating", {"aggregation", "merging", "timeouts", "offsets"}, set()),
    ("extras", {"spectrum", "archive"}, {"numba", "pyfftw", "pyarrow"}),
]  # fmt: skip
STANDARD = set(sys.stdlib_module_names)


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "quaxspec":
                names.update(f"quaxspec.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def test_every_module_is_in_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    placed = [m for _, members, _ in LAYERS for m in members]
    assert sorted(placed) == sorted(modules)


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[name for name, _, _ in LAYERS])
def test_a_layer_imports_only_what_comes_before_it(index):
    name, members, _ = LAYERS[index]
    allowed_modules = set().union(*(m for _, m, _ in LAYERS[: index + 1]))
    allowed_packages = set().union(*(p for _, _, p in LAYERS[: index + 1]))
    for module in sorted(members):
        for imported in _imports(module):
            top, _, rest = imported.partition(".")
            if top == "quaxspec":
                assert rest.split(".")[0] in allowed_modules, f"{name}: {module} imports {imported}"
            else:
                assert top in STANDARD or top in allowed_packages, (
                    f"{name}: {module} imports {imported}"
                )


def test_the_formats_load_no_analysis_kernel_or_archive():
    """At run time too (nothing imported lazily behind the layer's back)."""
    formats = sorted(LAYERS[0][1])
    probe = (
        f"import sys; import {', '.join(f'quaxspec.{m}' for m in formats)}; "
        "print(' '.join(m for m in ('scipy', 'numba', 'pyfftw', 'llvmlite', 'pyarrow')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
