"""A TCP proxy on 127.0.0.1 that injects network faults between a client and a server.

proxy = FaultProxy("127.0.0.1", zk_port)
await proxy.start()           # clients connect to proxy.port instead
proxy.latency(0.2)            # every chunk, both ways, 200 ms late
proxy.blackhole()             # bytes vanish, connections stay open, new ones hang
proxy.reset()                 # every connection gets a TCP RST, and so do new ones
proxy.slow_close(2.0)         # a side that closes is passed on 2 s late
proxy.heal()                  # back to a plain pipe
await proxy.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class FaultProxy:
    def __init__(self, host: str, port: int, chunk: int = 65536) -> None:
        self._target = (host, port)
        self._chunk = chunk
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._delay = 0.0
        self._close_delay = 0.0
        self._blackholed = False
        self._unblocked = asyncio.Event()  # set while not blackholed
        self._unblocked.set()
        self._resetting = False
        self.connections = 0

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- faults -------------------------------------------------------------------------

    def heal(self) -> None:
        self._delay = self._close_delay = 0.0
        self._blackholed = self._resetting = False
        self._unblocked.set()

    def latency(self, seconds: float) -> None:
        self._delay = seconds

    def blackhole(self) -> None:
        self._blackholed = True
        self._unblocked.clear()

    def slow_close(self, seconds: float) -> None:
        self._close_delay = seconds

    def reset(self) -> None:
        """RST every open connection now, and every new one until heal()."""
        self._resetting = True
        for writer in list(self._writers):
            _abort_with_rst(writer)

    # -- plumbing -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._resetting:
            _abort_with_rst(writer)
            return
        await self._unblocked.wait()  # a new connection in a blackhole is never answered
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _abort_with_rst(writer)
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(self._chunk):
                if self._blackholed:
                    continue
                if self._delay:
                    await asyncio.sleep(self._delay)
                sink.write(data)
                await sink.drain()
            if self._close_delay:
                await asyncio.sleep(self._close_delay)
            if sink.can_write_eof():
                sink.write_eof()
        except OSError:  # a reset on one side resets the other
            sink.transport.abort()


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
