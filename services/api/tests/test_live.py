"""The WebSocket feed: subscription filters, message format, slow clients dropped to their bound."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from quax_api.hub import Hub


def test_a_full_queue_loses_its_oldest_updates_and_says_so():
    hub = Hub(maxsize=3)
    slow = hub.subscribe(None)
    other = hub.subscribe(frozenset({"run-b"}))
    for n in range(5):
        hub.publish("run-a", "file", json.dumps({"n": n}).encode())
    received = [json.loads(slow.queue.get_nowait()) for _ in range(3)]
    assert [m["data"]["n"] for m in received] == [2, 3, 4]
    assert {m["run_id"] for m in received} == {"run-a"}
    assert slow.dropped == 2
    assert other.queue.empty()  # subscribed to another run
    hub.unsubscribe(slow)
    hub.unsubscribe(other)
    assert len(hub) == 0


def test_websocket_clients_get_hello_then_the_updates_of_their_runs(app):
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws/v1/spectra?runs=run-a") as only_a,
        client.websocket_connect("/ws/v1/spectra") as everything,
    ):
        assert only_a.receive_json() == {"type": "hello", "runs": ["run-a"], "queue": 32}
        assert everything.receive_json()["runs"] is None
        document = app.state.store.state("run-b").run.to_bytes()
        app.state.hub.publish("run-b", "run", document)
        document_a = app.state.store.state("run-a").files[6].to_bytes()
        app.state.hub.publish("run-a", "file", document_a)
        first = everything.receive_json()
        assert (first["type"], first["run_id"]) == ("run", "run-b")
        assert first["data"]["schema"] == "quax.run-spectrum/1"
        assert everything.receive_json()["data"]["file_number"] == 6
        update = only_a.receive_json()
        assert (update["type"], update["run_id"]) == ("file", "run-a")
        assert update["data"] == json.loads(document_a)


@pytest.mark.parametrize("runs", ["", "a,,b", "x" * 256])
def test_a_bad_runs_parameter_is_refused(app, runs):
    with (
        TestClient(app) as client,
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws/v1/spectra?runs={runs}") as socket,
    ):
        socket.receive_json()
    assert refused.value.code == 1008


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("http://testserver", True),  # the API's own pages
        ("https://grafana.lab.example:3000", True),  # configured
        ("http://evil.example", False),
        ("http://testserver.evil.example", False),
        ("null", False),  # a sandboxed page or a file
    ],
)
def test_pages_of_other_origins_cannot_open_the_feed(app, origin, allowed):
    app.state.origins = frozenset({"https://grafana.lab.example:3000"})
    headers = {} if origin is None else {"origin": origin}
    with TestClient(app) as client:
        if allowed:
            with client.websocket_connect("/ws/v1/spectra", headers=headers) as socket:
                assert socket.receive_json()["type"] == "hello"
            return
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/ws/v1/spectra", headers=headers) as socket,
        ):
            socket.receive_json()
    assert refused.value.code == 1008


def test_any_origin_may_be_allowed(app):
    app.state.origins = frozenset({"*"})
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws/v1/spectra", headers={"origin": "http://x.example"}) as s,
    ):
        assert s.receive_json()["type"] == "hello"


def test_a_client_that_leaves_is_unsubscribed(app):
    with TestClient(app) as client:
        with client.websocket_connect("/ws/v1/spectra") as socket:
            socket.receive_json()
            assert len(app.state.hub) == 1
        for _ in range(50):
            if len(app.state.hub) == 0:
                break
            asyncio.run(asyncio.sleep(0.02))
    assert len(app.state.hub) == 0
