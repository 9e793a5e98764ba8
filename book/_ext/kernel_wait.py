"""A bounded wait for a new kernel's ``kernel_info`` reply when notebooks are executed.

Before running the first cell, nbclient asks the kernel for its ``kernel_info`` and waits for
the reply as long as a cell may run (the book's 600 s). On a machine whose cores other
programs keep busy that reply is sometimes never seen: nbclient waits on the shell channel
and the kernel, idle, waits for requests (seen with ipykernel 7.4, jupyter_client 8.10,
nbclient 0.11, pyzmq 27.3; the first chapter cell afterwards runs normally). With the stock
client the build then sits out the full limit. ``install()`` makes that one wait end
after ``KERNEL_INFO_SECONDS`` with a warning, and the notebook is executed as usual; every
cell keeps its own limit.

The same stall was seen once in the middle of a chapter, with nbclient waiting for a cell's
reply: nbclient waits for it in one poll of the shell socket as long as the cell may run,
and a wake-up that the busy machine loses is never repeated. ``install()`` therefore also
makes every wait of an asynchronous kernel-client channel a series of polls of at most
``POLL_SECONDS``, each preceded by a non-blocking check of the socket, so that a reply that
has arrived is read within a second whether or not its wake-up was seen.
"""
from __future__ import annotations

import time

KERNEL_INFO_SECONDS = 30
POLL_SECONDS = 1.0


def install(limit: float = KERNEL_INFO_SECONDS) -> None:
    """Patch ``nbclient.NotebookClient.async_wait_for_reply`` for the reply that is not a
    cell's (``cell is None``: the ``kernel_info`` request); idempotent."""
    from queue import Empty

    from nbclient import NotebookClient
    from nbclient.util import ensure_async

    original = NotebookClient.async_wait_for_reply
    if getattr(original, "_lvae_bounded", False):
        return

    async def async_wait_for_reply(self, msg_id, cell=None):
        if cell is not None:
            return await original(self, msg_id, cell)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=1))
            except Empty:
                await self._async_check_alive()
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        self.log.warning("no kernel_info reply within %d s; executing the notebook anyway",
                         limit)
        return None

    async_wait_for_reply._lvae_bounded = True
    NotebookClient.async_wait_for_reply = async_wait_for_reply
    _slice_channel_waits()


def _slice_channel_waits(slice_seconds: float = POLL_SECONDS) -> None:
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    if getattr(original, "_lvae_sliced", False):
        return

    async def get_msg(self, timeout=None):
        if timeout is not None and timeout <= slice_seconds:
            return await original(self, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return await original(self, 0)          # already there: read it
            except Empty:
                pass
            left = slice_seconds if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise Empty
            try:
                return await original(self, min(slice_seconds, left))
            except Empty:
                continue

    get_msg._lvae_sliced = True
    AsyncZMQSocketChannel.get_msg = get_msg
