"""A lean HTTP/1.1 load generator for loopback benchmarks: keep-alive connections, raw asyncio
streams, pre-encoded requests.

httpx costs about as much CPU per request as the server under test; on a 2-core machine
that caps any open-loop overload run at the client's own speed (every latency becomes
client queueing). This client does only what the benchmarks need: POST a JSON body, read
the status line, the headers and a Content-Length or chunked body.
"""

from __future__ import annotations

import asyncio
import contextlib


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> Response:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:
            body = await self.reader.read()
        return Response(status, headers, body)

    def close(self) -> None:
        self.writer.close()


class Client:
    """Up to ``connections`` keep-alive connections to ``host:port``; callers beyond that wait."""

    def __init__(self, host: str, port: int, connections: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._free: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)

    def request(self, path: str, body: bytes) -> bytes:
        return (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{self.extra}\r\n").encode() + body

    async def post(self, request: bytes, timeout: float) -> Response:
        async with self._slots:
            connection = self._free.pop() if self._free else _Connection(
                *await asyncio.open_connection(self.host, self.port))
            try:
                response = await asyncio.wait_for(connection.exchange(request), timeout)
            except BaseException:
                connection.close()  # a half-read answer leaves the stream unusable
                raise
            if response.headers.get("connection", "").lower() == "close":
                connection.close()
            else:
                self._free.append(connection)
            return response

    async def close(self) -> None:
        for connection in self._free:
            connection.close()
            with contextlib.suppress(Exception):
                await connection.writer.wait_closed()
        self._free.clear()
