"""No one locks the API out: floods of what anyone may open (health Watch and reflection
streams, slow or idle REST connections) leave BalanceService's calls served, and the
flooding streams and sockets are refused or ended.

One server with small limits serves every test here; each test closes what it opened.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from harness import ServerProcess, free_port, wait_until

from ledgerd.v1 import balance_pb2 as pb
from ledgerd.v1 import balance_pb2_grpc as pb_grpc

MAX_CALLS = 16
MAX_STREAMS = 8
STREAM_LIFE_S = 2.0
MAX_CONNECTIONS = 12
HEADER_READ_TIMEOUT_S = 1.0
KEEPALIVE_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    process = ServerProcess(
        tmp_path_factory.mktemp("lockout"),
        {
            "LEDGERD_HTTP_ADDR": f"127.0.0.1:{port}",
            "LEDGERD_MAX_CONCURRENT_RPCS": str(MAX_CALLS),
            "LEDGERD_INTROSPECTION_MAX_STREAMS": str(MAX_STREAMS),
            "LEDGERD_INTROSPECTION_STREAM_MAX_LIFE_S": str(STREAM_LIFE_S),
            "LEDGERD_REST_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "LEDGERD_REST_HEADER_READ_TIMEOUT_S": str(HEADER_READ_TIMEOUT_S),
            "LEDGERD_REST_KEEPALIVE_TIMEOUT_S": str(KEEPALIVE_TIMEOUT_S),
        },
    ).start()
    yield process, f"127.0.0.1:{port}"
    process.stop()


async def _balance_calls(target: str, count: int) -> list[grpc.StatusCode]:
    """``count`` GetBalance and ChangeBalance calls at once, on a channel of their own."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.BalanceServiceStub(channel)

        async def one(i: int) -> grpc.StatusCode:
            try:
                if i % 2:
                    await stub.GetBalance(
                        pb.GetBalanceRequest(user_id=7, currency="USD"), timeout=10
                    )
                else:
                    request_id = f"lockout-{time.time_ns()}-{i}"
                    await stub.ChangeBalance(
                        pb.ChangeBalanceRequest(
                            request_id=request_id, user_id=7, currency="USD", type=1, amount="1"
                        ),
                        timeout=10,
                    )
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _first_answer(call: grpc.aio.UnaryStreamCall[object, object]) -> grpc.StatusCode:
    """OK once the stream sent its first message, else the code it ended with."""
    try:
        await asyncio.wait_for(call.read(), timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_health_watch_streams_past_every_limit_leave_balance_calls_served(
    server: tuple[ServerProcess, str],
) -> None:
    """Far more idle Watch streams than LEDGERD_MAX_CONCURRENT_RPCS: those past the streams'
    own cap get RESOURCE_EXHAUSTED, BalanceService calls (up to their limit) all succeed,
    and the admitted streams are ended (UNAVAILABLE) once their maximum life is over."""
    process, _ = server

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(process.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watches = [
                health.Watch(health_pb2.HealthCheckRequest(service=""))
                for _ in range(MAX_CALLS * 3)
            ]
            firsts = await asyncio.gather(*(_first_answer(call) for call in watches))
            opened_at = time.monotonic()

            codes = await _balance_calls(process.target, MAX_CALLS)
            assert codes == [grpc.StatusCode.OK] * MAX_CALLS
            assert firsts.count(grpc.StatusCode.OK) == MAX_STREAMS, firsts
            assert firsts.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == len(watches) - MAX_STREAMS

            admitted = [
                call
                for call, first in zip(watches, firsts, strict=True)
                if first == grpc.StatusCode.OK
            ]
            ends = await asyncio.wait_for(
                asyncio.gather(*(call.code() for call in admitted)), timeout=STREAM_LIFE_S + 10
            )
            assert set(ends) == {grpc.StatusCode.UNAVAILABLE}
            assert time.monotonic() - opened_at < STREAM_LIFE_S + 10

    asyncio.run(scenario())


def test_idle_reflection_stream_is_ended_after_its_maximum_life(
    server: tuple[ServerProcess, str],
) -> None:
    """A reflection stream that answered once and then waits for its client is ended with
    UNAVAILABLE after LEDGERD_INTROSPECTION_STREAM_MAX_LIFE_S, not held for ever."""
    process, _ = server

    async def scenario() -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(process.target) as channel:
            call = channel.stream_stream(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )()
            await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            answer = await asyncio.wait_for(call.read(), timeout=10)
            assert answer.list_services_response.service
            return await asyncio.wait_for(call.code(), timeout=STREAM_LIFE_S + 10)

    assert asyncio.run(scenario()) == grpc.StatusCode.UNAVAILABLE


def _get(base: str, path: str = "/v1/health") -> tuple[int, dict[str, object]]:
    """One well-behaved request on a new connection: (status, JSON body)."""
    try:
        with urllib.request.urlopen(f"http://{base}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed the socket (EOF or reset), False while it is open."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def _connect(base: str) -> socket.socket:
    host, _, port = base.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_slowloris_sockets_are_closed_and_others_are_served(
    server: tuple[ServerProcess, str],
) -> None:
    """Sockets that send a request's head a piece at a time are closed after the header-read
    timeout, while a well-behaved client is served meanwhile."""
    _, base = server
    slow = [_connect(base) for _ in range(MAX_CONNECTIONS // 2)]
    started = time.monotonic()
    try:
        for sock in slow:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        assert _get(base)[0] == 200

        def dribble_until_closed() -> bool:
            closed = 0
            for sock in slow:
                if _closed_by_server(sock):
                    closed += 1
                    continue
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    closed += 1
            return closed == len(slow)

        wait_until(dribble_until_closed, 10, "every slowloris socket closed", interval_s=0.2)
        assert time.monotonic() - started >= HEADER_READ_TIMEOUT_S
    finally:
        for sock in slow:
            sock.close()
    assert _get(base)[0] == 200


def test_idle_keepalive_connections_are_closed(server: tuple[ServerProcess, str]) -> None:
    """Connections that made one request and then stay idle are closed after the keep-alive
    timeout (aiohttp's default kept them 3630 s)."""
    _, base = server
    idle = [_connect(base) for _ in range(MAX_CONNECTIONS // 2)]
    try:
        for sock in idle:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        wait_until(
            lambda: all(_closed_by_server(sock) for sock in idle),
            KEEPALIVE_TIMEOUT_S + 10,
            "every idle keep-alive connection closed",
            interval_s=0.2,
        )
        assert time.monotonic() - answered >= KEEPALIVE_TIMEOUT_S * 0.9
    finally:
        for sock in idle:
            sock.close()


def test_connections_past_the_cap_are_refused_and_freed_slots_serve_again(
    server: tuple[ServerProcess, str],
) -> None:
    """With LEDGERD_REST_MAX_CONNECTIONS silent sockets open, one more connection gets 429
    RESOURCE_EXHAUSTED at once; once the silent ones are cut (header-read timeout), a
    well-behaved client is served again."""
    _, base = server
    silent = [_connect(base) for _ in range(MAX_CONNECTIONS)]
    try:
        status, body = wait_until(
            lambda: (answer := _get(base))[0] == 429 and answer,
            5,
            "a connection past the cap refused",
            ignoring=(OSError,),
        )
        assert status == 429
        assert body["code"] == "RESOURCE_EXHAUSTED"
        assert str(MAX_CONNECTIONS) in str(body["message"])
        wait_until(
            lambda: _get(base)[0] == 200,
            10,
            "served once the silent sockets are cut",
            ignoring=(OSError,),
        )
        assert all(_closed_by_server(sock) for sock in silent)
    finally:
        for sock in silent:
            sock.close()
