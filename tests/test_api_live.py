"""The API on the real pipeline: the WebSocket feed, restore after a restart, many clients."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import websockets
from aiokafka import AIOKafkaProducer
from localkafka import LocalKafka, free_port
from pipeline import Pipeline, streaming

from quaxspec.spectra import FileSpectrum
from quaxspec.topics import MAX_MESSAGE_BYTES, RUNS, SPECTRA

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SAMPLES = 3072 * 200
FILES = 6


def producer_options(run_id: str, files: int = FILES) -> list[str]:
    return [
        "--source", "synthetic", "--run-id", run_id, "--seed", "8", "--files", str(files),
        "--samples-per-file", str(SAMPLES), "--seconds-per-pair", "0.6",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def live(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with streaming(kafka, tmp_path_factory.mktemp("api"), QUAX_API_CLIENT_QUEUE="4") as pipe:
        yield pipe


async def _listen(url: str, count: int, *, timeout: float = 120) -> list[dict]:
    """Messages of a client until it has ``count`` file updates."""
    messages: list[dict] = []
    async with websockets.connect(url, max_size=None) as socket:
        hello = json.loads(await socket.recv())
        assert hello["type"] == "hello"
        deadline = time.monotonic() + timeout
        while sum(m["type"] == "file" for m in messages) < count:
            remaining = deadline - time.monotonic()
            messages.append(json.loads(await asyncio.wait_for(socket.recv(), remaining)))
    return messages


_HEAD = re.compile(r'^\{"type":"(\w+)",.*?"file_number":(\d+)')


async def _count_files(url: str, count: int, *, timeout: float = 300) -> list[int]:
    """File numbers a client receives until it has ``count`` of them (reads envelopes only)."""
    numbers: list[int] = []
    async with websockets.connect(url, max_size=None) as socket:
        await socket.recv()  # hello
        deadline = time.monotonic() + timeout
        while len(numbers) < count:
            text = await asyncio.wait_for(socket.recv(), deadline - time.monotonic())
            head = _HEAD.match(text[:400])
            if head and head[1] == "file":
                numbers.append(int(head[2]))
    return numbers


def test_websocket_gets_one_message_per_file_in_order_with_the_topic_numbers(live):
    port = free_port()
    live.start_api(port=port)
    url = f"ws://127.0.0.1:{port}/ws/v1/spectra?runs=api-ws"

    async def scenario() -> list[dict]:
        listener = asyncio.create_task(_listen(url, FILES))
        await asyncio.sleep(1.0)  # connected before the first file
        live.start("producer-ws", "quax-producer", "run", *producer_options("api-ws"))
        return await listener

    messages = asyncio.run(scenario())
    outputs = live.collect({"api-ws": FILES})

    files = [m for m in messages if m["type"] == "file"]
    assert [m["data"]["file_number"] for m in files] == list(range(FILES))
    for message in files:
        from_topic = outputs.files[("api-ws", message["data"]["file_number"])]
        from_socket = FileSpectrum.from_bytes(json.dumps(message["data"]).encode())
        np.testing.assert_array_equal(from_socket.mean, from_topic.mean)
        np.testing.assert_array_equal(from_socket.std, from_topic.std)
    runs = [m for m in messages if m["type"] == "run"]
    assert runs, "run updates are fed too"
    assert not [m for m in messages if m["type"] == "dropped"]
    live.stop("api")


def test_a_restarted_api_serves_the_same_run_before_any_new_file(live):
    live.produce("producer-restore", *producer_options("api-restore", files=3))
    live.collect({"api-restore": 3})
    port = free_port()
    live.start_api("api-1", port=port)
    before = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs/api-restore").content
    files_before = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs/api-restore/files").json()
    live.stop("api-1")

    live.start_api("api-2", port=port)
    after = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs/api-restore").content
    files_after = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs/api-restore/files").json()
    live.stop("api-2")

    assert json.loads(before)["files"] == 3
    assert after == before
    assert files_after == files_before


def test_fifty_clients_keep_receiving_while_a_stuck_one_is_dropped_to_its_bound(live):
    port = free_port()
    live.start_api(port=port)
    url = f"ws://127.0.0.1:{port}/ws/v1/spectra?runs=api-many"

    many = 20  # ~10 MB of updates: more than the socket buffers of the stuck client hold

    async def scenario() -> tuple[list[list[int]], list[dict]]:
        tiny = socket.socket()
        tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        tiny.connect(("127.0.0.1", port))
        stuck = await websockets.connect(url, sock=tiny, max_size=None, max_queue=1)
        readers = [asyncio.create_task(_count_files(url, many)) for _ in range(49)]
        await asyncio.sleep(2.0)
        options = producer_options("api-many", files=many)
        live.start("producer-many", "quax-producer", "run", *options)
        received = await asyncio.gather(*readers)
        # The stuck client now reads what is left for it: at most its queue and what the
        # socket buffers held, with a notice of how many updates it lost.
        late: list[dict] = []
        try:
            while True:
                late.append(json.loads(await asyncio.wait_for(stuck.recv(), 2.0)))
        except TimeoutError:
            pass
        await stuck.close()
        return received, late

    received, late = asyncio.run(scenario())
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics/").text
    live.stop("api")

    for numbers in received:
        assert numbers == list(range(many))
    notices = [m["count"] for m in late if m["type"] == "dropped"]
    assert notices
    assert notices[-1] > 0
    assert sum(m["type"] in ("file", "run") for m in late) < 2 * many
    dropped = [
        line for line in metrics.splitlines() if line.startswith("quax_api_websocket_dropped_total")
    ]
    assert float(dropped[0].split()[-1]) > 0


def _garbage(valid: bytes, field: bytes) -> list[bytes]:
    """Records a broken or hostile writer could put on a spectra topic."""
    start = valid.index(field) + len(field)
    stop = min(valid.index(c, start) for c in (b",", b"}") if c in valid[start:])
    numbers = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 5000]
    edited = [valid[:start] + number + valid[stop:] for number in numbers]
    return [*edited, valid.decode().encode("utf-16"), bytes(range(256)) * 3, b"", b"{}"]


def test_garbage_on_the_spectra_topics_is_skipped_and_the_api_stays_ready(live):
    live.produce("producer-garbage", *producer_options("api-garbage", files=2))
    outputs = live.collect({"api-garbage": 2})
    port = free_port()
    live.start_api("api-g1", port=port)
    base = f"http://127.0.0.1:{port}/api/v1/runs/api-garbage"
    before = (httpx.get(base).content, httpx.get(f"{base}/files/1").content)

    run_bytes = outputs.runs["api-garbage"].to_bytes()
    file_bytes = outputs.files[("api-garbage", 1)].to_bytes()
    poison = [(RUNS, value) for value in _garbage(run_bytes, b'"files":')]
    poison += [(SPECTRA, value) for value in _garbage(file_bytes, b'"count":')]

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=live.kafka.bootstrap, max_request_size=MAX_MESSAGE_BYTES
        )
        await producer.start()
        try:
            for spec, value in poison:
                await producer.send_and_wait(live.prefix + spec.name, value, key=b"poison")
        finally:
            await producer.stop()

    asyncio.run(send())
    deadline = time.monotonic() + 30
    while _rejects(port) < len(poison):
        assert time.monotonic() < deadline, f"{_rejects(port)} rejects\n{live.log('api-g1')}"
        time.sleep(0.5)
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    assert (httpx.get(base).content, httpx.get(f"{base}/files/1").content) == before
    live.stop("api-g1")

    # A restarted API reads the runs topic from its start, garbage included: it must
    # become ready (start_api waits for /readyz) and serve the same bytes.
    live.start_api("api-g2", port=port)
    after = (httpx.get(base).content, httpx.get(f"{base}/files/1").content)
    runs = [r["run_id"] for r in httpx.get(f"http://127.0.0.1:{port}/api/v1/runs").json()]
    rejects = _rejects(port)
    live.stop("api-g2")
    assert after == before
    assert "poison" not in runs
    assert rejects >= len([p for p in poison if p[0] is RUNS])


def _rejects(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics/").text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("quax_api_rejects_total{")
    )
