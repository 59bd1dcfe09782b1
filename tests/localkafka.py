"""A local Apache Kafka broker for tests, run by tools/kafka/kafka.sh in its own folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "tools" / "kafka" / "kafka.sh"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalKafka:
    """A single-node broker run by tools/kafka/kafka.sh in its own folder and ports."""

    directory: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int((self.directory / "kafka.pid").read_text())

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "QUAX_KAFKA_DIR": str(self.directory),
            "QUAX_KAFKA_PORT": str(self.port),
            "QUAX_KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }
        return subprocess.run(
            ["bash", str(KAFKA_SH), command],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def create_topics(self, prefix: str = "") -> None:
        """Create the project's topics, each name preceded by ``prefix``."""
        subprocess.run(
            [sys.executable, str(ROOT / "tools" / "kafka" / "topics.py"),
             "--bootstrap", self.bootstrap, "--prefix", prefix],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    @classmethod
    def fresh(cls, directory: Path) -> LocalKafka:
        return cls(directory, free_port(), free_port())
