"""A local Apache Kafka broker for tests, run by tools/kafka/kafka.sh in its own folder."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quaxspec.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "tools" / "kafka" / "kafka.sh"


# Ports are drawn below the kernel's ephemeral range (32768-60999 by default), which the
# suite's own outgoing connections use: a port the kernel hands out for "port 0" can be
# taken by a client's connection before the broker binds it. Each is handed out once.
_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and no earlier call gave."""
    for _ in range(200):
        port = random.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1} after 200 tries")


@dataclass
class LocalKafka:
    """A single-node broker run by tools/kafka/kafka.sh in its own folder and ports.

    ``client_env`` holds the QUAX_KAFKA_* security settings its clients need (empty for the
    plaintext broker); ``broker_env`` what kafka.sh needs to secure it.
    """

    directory: Path
    port: int
    controller_port: int
    client_env: dict[str, str] = field(default_factory=dict)
    broker_env: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int((self.directory / "kafka.pid").read_text())

    @property
    def client_options(self) -> dict[str, Any]:
        """Keyword arguments that connect an aiokafka client of a test to this broker."""
        settings = KafkaSettings(
            bootstrap_servers=self.bootstrap,
            **{k.removeprefix("QUAX_KAFKA_").lower(): v for k, v in self.client_env.items()},
        )
        return settings.client_options()

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            **self.client_env,
            **self.broker_env,
            "QUAX_KAFKA_DIR": str(self.directory),
            "QUAX_KAFKA_PORT": str(self.port),
            "QUAX_KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }
        done = subprocess.run(
            ["bash", str(KAFKA_SH), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:  # the script's own words say why; keep them in the failure
            raise RuntimeError(
                f"kafka.sh {command} (port {self.port}) exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done

    def create_topics(self, prefix: str = "", aggregator_app_id: str = "quax-aggregator") -> None:
        """Create the project's topics, each name preceded by ``prefix``, and the changelogs
        of the aggregator named ``aggregator_app_id``."""
        subprocess.run(
            [sys.executable, str(ROOT / "tools" / "kafka" / "topics.py"),
             "--bootstrap", self.bootstrap, "--prefix", prefix,
             "--aggregator-app-id", aggregator_app_id],
            check=True, capture_output=True, text=True, timeout=120,
            env={**os.environ, **self.client_env},
        )  # fmt: skip

    @classmethod
    def fresh(cls, directory: Path) -> LocalKafka:
        return cls(directory, free_port(), free_port())
