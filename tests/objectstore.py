"""A real S3-compatible object store for the tests: SeaweedFS's server with its S3 gateway.

``weed`` is built from the Go module proxy by tools/s3/install.sh (``make test`` does it). The
store runs on loopback ports of its own, with its data in a temporary folder and one identity
whose keys are made per session; :meth:`LocalS3.stop` ends it and its data goes with the
folder. A :class:`DroppingProxy` in front of it stands for a network that fails for a while.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from localkafka import free_port

from quaxspec.daq import pair_paths
from quaxspec.settings import S3Settings

WEED = Path(__file__).resolve().parents[1] / ".tools" / "bin" / "weed"


class LocalS3:
    """One SeaweedFS server (master, volume, filer, S3 gateway) on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        if not WEED.exists():
            raise RuntimeError(f"{WEED} is missing: tools/s3/install.sh builds it (make test)")
        self.root = root
        self.port = free_port()
        self.access_key = f"quax{secrets.token_hex(4)}"
        self.secret_key = secrets.token_hex(16)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, *, endpoint: str | None = None) -> S3Settings:
        """How the producer reaches this store (or a proxy in front of it)."""
        return S3Settings(
            endpoint_url=endpoint or self.endpoint,
            region="us-east-1",
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,  # type: ignore[arg-type]
            addressing_style="path",
        )

    def env(self, *, endpoint: str | None = None) -> dict[str, str]:
        """The same as environment variables, for a producer process."""
        return {
            "QUAX_S3_ENDPOINT_URL": endpoint or self.endpoint,
            "QUAX_S3_REGION": "us-east-1",
            "QUAX_S3_ACCESS_KEY_ID": self.access_key,
            "QUAX_S3_SECRET_ACCESS_KEY": self.secret_key,
            "QUAX_S3_ADDRESSING_STYLE": "path",
        }

    def client(self) -> Any:
        """A boto3 client of the store, for filling buckets."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def start(self, timeout: float = 60) -> None:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.root / "s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "quax",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        ports = {
            name: free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port.grpc",
                "metricsPort",
            )
        }
        command = [
            str(WEED),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in ports.items()),
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.config={identities}",
            "-s3.port.iceberg=0",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-master.telemetry=false",
            f"-s3.localSocket={self.root / 's3.sock'}",
            # Every bucket is a collection of volumes of its own: many small, sparse volumes.
            "-master.volumeSizeLimitMB=64",
            "-volume.max=300",
            "-volume.preStopSeconds=0",
        ]
        log = (self.root / "weed.log").open("ab")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"weed exited:\n{self.log()}")
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed's S3 gateway did not answer:\n{self.log()}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)  # its data goes with the test's folder
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self) -> str:
        path = self.root / "weed.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def bucket(self, name: str) -> str:
        """Create a bucket unless this session's store has it already; its name.

        The store lives for the whole session, so tests that share a bucket name (the
        chart's archive-s3 mode names quax-archive) may each ask for it.
        """
        client = self.client()
        if name not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
            client.create_bucket(Bucket=name)
        return name

    def upload_pairs(self, directory: Path, numbers: range | list[int], url: str) -> None:
        """Put a folder's pairs ``numbers`` under ``s3://bucket/prefix`` as the DAQ's files."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        client = self.client()
        for number in numbers:
            for path in pair_paths(directory, number):
                client.upload_file(str(path), bucket, prefix + path.name)


class DroppingProxy:
    """A TCP relay to the store that, while ``dropping``, cuts every connection it holds or gets.

    A cut connection is closed with a reset mid-stream, as a failing network or a restarted
    load balancer does; new connections are accepted and reset at once.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.dropping = threading.Event()
        self.cut = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop(self) -> None:
        """Start cutting: every open connection now, every new one on arrival."""
        self.dropping.set()
        with self._lock:
            for sock in list(self._open):
                self._reset(sock)

    def heal(self) -> None:
        self.dropping.clear()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._server.close()
        with self._lock:
            for sock in list(self._open):
                self._reset(sock)

    def _reset(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            # shutdown, not close alone: it also wakes the relay thread blocked on the socket.
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        self._open.discard(sock)
        self.cut += 1

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.dropping.is_set():
                with self._lock:
                    self._open.add(client)
                    self._reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            for sock in (source, sink):
                if sock in self._open:
                    with contextlib.suppress(OSError):
                        sock.close()
                    self._open.discard(sock)


@contextlib.contextmanager
def running(root: Path) -> Iterator[LocalS3]:
    store = LocalS3(root)
    store.start()
    try:
        yield store
    finally:
        store.stop()
