"""Stopping: a source is left at once when asked, even while it waits for the next file."""

from __future__ import annotations

import asyncio
import os
import signal

from quax_producer.shutdown import Shutdown, until_stopped


async def test_until_stopped_leaves_a_waiting_source_and_closes_it():
    closed = asyncio.Event()

    async def slow_source():
        try:
            yield 1
            await asyncio.sleep(3600)  # the DAQ is quiet
            yield 2
        finally:
            closed.set()

    stop = asyncio.Event()
    seen = []
    asyncio.get_running_loop().call_later(0.05, stop.set)

    async with asyncio.timeout(5):
        async for item in until_stopped(slow_source(), stop):
            seen.append(item)

    assert seen == [1]
    assert closed.is_set()


async def test_first_signal_asks_to_stop_and_second_cancels():
    stop = asyncio.Event()
    task = asyncio.create_task(asyncio.sleep(3600))

    with Shutdown(stop=stop, task=task):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
        assert not task.cancelled()
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.gather(task, return_exceptions=True)

    assert task.cancelled()
