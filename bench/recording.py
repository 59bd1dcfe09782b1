"""What the benchmarks share: a description of the machine, and recording their results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    """CPU model, cores and Python version, as the tables state them."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}"


def process_cpu(pid: int) -> float:
    """CPU seconds of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a process so far (MiB, VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM for {pid}")


def record(name: str, title: str, table: str, results: object) -> None:
    """Write raw results to bench/results/<name>.json and ``table`` into docs/benchmarks.md.

    The table goes between the ``<!-- name:begin -->`` and ``<!-- name:end -->`` markers,
    made at the end of the document under ``title`` the first time.
    """
    (ROOT / "bench" / "results" / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = DOC.read_text()
    if begin not in text:
        text += f"\n## {title}\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{begin}\n{table}\n{end}{tail}")
