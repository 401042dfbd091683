"""A watch writes its events straight to the client (`Watcher.attach`) and falls back to its
task only while the client is not reading: nothing lost, nothing out of order, nothing after
the stream's end."""

from __future__ import annotations

import asyncio

from gati_kubesim.watch import Watcher


async def _pass() -> None:
    """Let the callbacks queued in this loop pass run."""
    await asyncio.sleep(0)


class Client:
    """A sink that refuses while `reading` is False, or fails once `gone`."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.reading = True
        self.gone = False

    def __call__(self, data: bytes) -> bool:
        if self.gone:
            raise ConnectionResetError("gone")
        if not self.reading:
            return False
        self.got.append(data)
        return True


async def test_events_of_one_pass_go_out_together_without_waking_the_task() -> None:
    watcher, client = Watcher(namespace=None, matcher=None), Client()
    watcher.attach(client)
    watcher.push(b"a\n")
    watcher.push(b"b\n")
    assert client.got == []  # written once the pass is done
    await _pass()
    assert client.got == [b"a\nb\n"]
    assert not watcher.pending
    assert not watcher.wakeup.is_set()
    watcher.push(b"c\n")
    await _pass()
    assert client.got == [b"a\nb\n", b"c\n"]


async def test_a_client_not_reading_leaves_the_events_to_the_task_in_order() -> None:
    watcher, client = Watcher(namespace=None, matcher=None), Client()
    watcher.attach(client)
    client.reading = False
    watcher.push(b"a\n")
    await _pass()
    assert list(watcher.pending) == [b"a\n"]
    assert watcher.wakeup.is_set()  # the task waits for the client, then writes
    watcher.push(b"b\n")
    assert watcher.drain() == b"a\nb\n"
    client.reading = True
    watcher.push(b"c\n")
    await _pass()
    assert client.got == [b"c\n"]


async def test_a_client_reading_again_takes_what_piled_up_and_the_task_sleeps_on() -> None:
    """Refused, then sent by a later pass before the task ran: the task must not be left
    woken with nothing to write (it would spin on the set event and hold the loop)."""
    watcher, client = Watcher(namespace=None, matcher=None), Client()
    watcher.attach(client)
    client.reading = False
    watcher.push(b"a\n")
    await _pass()
    assert watcher.wakeup.is_set()
    client.reading = True
    watcher.push(b"b\n")
    await _pass()
    assert client.got == [b"a\nb\n"]
    assert not watcher.pending
    assert not watcher.wakeup.is_set()


async def test_a_gone_client_closes_the_watch() -> None:
    watcher, client = Watcher(namespace=None, matcher=None), Client()
    watcher.attach(client)
    client.gone = True
    watcher.push(b"a\n")
    await _pass()
    assert watcher.closed
    assert watcher.wakeup.is_set()


async def test_nothing_is_written_after_detach_or_close() -> None:
    detached, client = Watcher(namespace=None, matcher=None), Client()
    detached.attach(client)
    detached.push(b"a\n")
    detached.detach()  # the stream ended in this pass: its last chunk is out
    await _pass()
    assert client.got == []
    closed = Watcher(namespace=None, matcher=None)
    closed.attach(client)
    closed.push(b"b\n")
    closed.close()  # its task writes what is left, then ends the stream
    await _pass()
    assert client.got == []
    assert list(closed.pending) == [b"b\n"]
