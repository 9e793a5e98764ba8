"""The build's wait for a new kernel's kernel_info reply ends (book/_ext/kernel_wait.py)."""
import asyncio
import concurrent.futures
import logging
import sys
import time
from pathlib import Path
from queue import Empty

from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import kernel_wait  # noqa: E402


class _Shell:
    def __init__(self, replies):
        self.replies = list(replies)

    async def get_msg(self, timeout=None):
        if self.replies:
            return self.replies.pop(0)
        await asyncio.sleep(min(timeout or 0, 0.05))
        raise Empty


class _Client:
    """What ``async_wait_for_reply`` uses of a NotebookClient: the kernel client's shell
    channel, the liveness check and the log."""
    log = logging.getLogger("test")

    def __init__(self, replies):
        self.kc = type("KC", (), {"shell_channel": _Shell(replies)})()

    async def _async_check_alive(self):
        return None



def _run(coro):
    """Run a coroutine to completion on a thread of its own.

    Another test (the browser tests' session-wide Playwright) may keep an event loop
    running on the main thread, where ``asyncio.run`` would refuse to start.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()

def _reply(msg_id):
    return {"parent_header": {"msg_id": msg_id}, "content": {}}


def test_a_lost_reply_ends_the_wait_and_a_late_one_is_found(monkeypatch):
    monkeypatch.setattr(NotebookClient, "async_wait_for_reply",
                        NotebookClient.async_wait_for_reply)   # undone after the test
    kernel_wait.install(limit=0.5)
    kernel_wait.install(limit=0.5)                            # idempotent
    wait = NotebookClient.async_wait_for_reply
    start = time.monotonic()
    assert _run(wait(_Client([]), "info-1")) is None
    assert 0.5 <= time.monotonic() - start < 5
    found = _run(wait(_Client([_reply("older"), _reply("info-2")]), "info-2"))
    assert found["parent_header"]["msg_id"] == "info-2"


def test_long_channel_waits_are_sliced_and_keep_their_deadline(monkeypatch):
    from jupyter_client.channels import AsyncZMQSocketChannel
    calls = []

    async def fake_get_msg(self, timeout=None):
        calls.append(timeout)
        if self.queue:
            return self.queue.pop(0)
        await asyncio.sleep(min(timeout, 0.01))
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", fake_get_msg)
    kernel_wait._slice_channel_waits(slice_seconds=0.1)
    channel = AsyncZMQSocketChannel.__new__(AsyncZMQSocketChannel)
    channel.queue = []
    start = time.monotonic()
    try:
        _run(AsyncZMQSocketChannel.get_msg(channel, timeout=0.5))
        raise AssertionError("no message: Empty expected")
    except Empty:
        pass
    assert 0.5 <= time.monotonic() - start < 3
    assert max(calls) <= 0.1 and 0 in calls            # short polls, each after a check
    channel.queue = ["reply"]
    assert _run(AsyncZMQSocketChannel.get_msg(channel, timeout=600)) == "reply"
