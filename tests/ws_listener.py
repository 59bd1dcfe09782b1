"""A WebSocket client of the API that notes when each file spectrum arrives (wall clock).

It runs in a thread of its own, so a test can write DAQ files, kill services and wait
while it listens. Only the envelope of each message is parsed: the spectra themselves are
checked against Kafka by the tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass

import websockets

_HEAD = re.compile(r'^\{"type":"(\w+)","run_id":("(?:[^"\\]|\\.)*")')
_FILE = re.compile(r'"file_number":(\d+),"complete":(true|false)')


@dataclass(frozen=True, slots=True)
class Arrival:
    """One file spectrum as the client saw it."""

    run_id: str
    file_number: int
    complete: bool
    time: float


class WebSocketListener:
    """Listens to ``url`` from a thread until stopped; ``arrivals`` grows as spectra come."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.arrivals: list[Arrival] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)
        self.failure: BaseException | None = None

    def __enter__(self) -> WebSocketListener:
        self._thread.start()
        if not self.connected.wait(30):
            raise TimeoutError(f"could not connect to {self.url}: {self.failure!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def files(self, run_id: str | None = None) -> dict[int, Arrival]:
        """The first arrival of each file (of one run, or of all)."""
        first: dict[int, Arrival] = {}
        for arrival in list(self.arrivals):
            if run_id is None or arrival.run_id == run_id:
                first.setdefault(arrival.file_number, arrival)
        return first

    def wait_for(self, count: int, *, run_id: str | None = None, timeout: float) -> None:
        """Until ``count`` distinct files have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.files(run_id)) < count:
            if self.failure is not None:
                raise self.failure
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.files(run_id))} of {count} files arrived")
            time.sleep(0.1)

    async def _listen(self) -> None:
        try:
            async with websockets.connect(self.url, max_size=None) as socket:
                hello = json.loads(await socket.recv())
                assert hello["type"] == "hello", hello
                self.connected.set()
                while not self._stop.is_set():
                    try:
                        text = await asyncio.wait_for(socket.recv(), 0.5)
                    except TimeoutError:
                        continue
                    now = time.time()
                    head = _HEAD.match(str(text)[:600])
                    if head is None or head[1] != "file":
                        continue
                    body = _FILE.search(str(text)[:2000])
                    if body is None:
                        continue
                    self.arrivals.append(
                        Arrival(json.loads(head[2]), int(body[1]), body[2] == "true", now)
                    )
        except BaseException as error:
            self.failure = error
            self.connected.set()
