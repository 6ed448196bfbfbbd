"""Whatever a buggy or hostile client sends, the server answers, stays up, and stores
nothing it did not accept (property-based, over a real gRPC server)."""

from __future__ import annotations

import asyncio
import os

import grpc
from harness import ServerProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerd.v1 import balance_pb2 as pb

SERVICE = "/ledgerd.v1.BalanceService/"
METHODS = [
    "GetBalance",
    "ChangeBalance",
    "ChangeBalances",
    "GetChange",
    "ListJournal",
    "HealthCheck",
]
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}
# Accepted request ids, to show afterwards that nothing else left a row.
accepted: set[str] = set()

deep_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
adversarial_amounts = st.one_of(
    deep_text,
    st.sampled_from(["0", "-1", "1e5", "NaN", "Infinity", " 1", "1.", ".5", "0x10", "1_000",
                     "1" * 21, "1." + "1" * 19, "99999999999999999999.999999999999999999",
                     "\u0663", "\uff11", "1\n", "+1"]),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)  # fmt: skip
changes = st.builds(
    pb.ChangeBalanceRequest,
    request_id=st.one_of(deep_text, st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)),
    user_id=st.integers(min_value=0, max_value=2**64 - 1),
    currency=st.one_of(deep_text, st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True)),
    type=st.integers(min_value=0, max_value=2**31 - 1),
    amount=adversarial_amounts,
    memo=deep_text,
    wait=st.just(False),
)


def call(server: ServerProcess, method: str, body: bytes, timeout: float = 10) -> grpc.StatusCode:
    with grpc.insecure_channel(
        server.target, options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        stub = channel.unary_unary(
            SERVICE + method, request_serializer=None, response_deserializer=None
        )
        try:
            stub(body, timeout=timeout)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change=changes)
def test_random_change_fields_get_ok_or_a_named_invalid_argument(
    open_server: ServerProcess, change: pb.ChangeBalanceRequest
) -> None:
    """Random and adversarial fields: OK, INVALID_ARGUMENT or ALREADY_EXISTS; never a crash."""
    code = call(open_server, "ChangeBalance", change.SerializeToString())
    assert code in ALLOWED
    if code == grpc.StatusCode.OK:
        accepted.add(change.request_id)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(METHODS), body=st.binary(max_size=2048))
def test_random_bytes_as_a_request_body_are_refused_cleanly(
    open_server: ServerProcess, method: str, body: bytes
) -> None:
    """Arbitrary bytes to any method: OK (if they parse and validate) or INVALID_ARGUMENT."""
    code = call(open_server, method, body)
    assert code in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    if code == grpc.StatusCode.OK and method == "ChangeBalance":
        accepted.add(pb.ChangeBalanceRequest.FromString(body).request_id)
    if code == grpc.StatusCode.OK and method == "ChangeBalances":
        accepted.update(c.request_id for c in pb.ChangeBalancesRequest.FromString(body).changes)


def test_oversized_messages_are_resource_exhausted(open_server: ServerProcess) -> None:
    """A 20 MB request is refused with RESOURCE_EXHAUSTED, and the server keeps serving."""
    huge = pb.ChangeBalancesRequest(
        changes=[
            pb.ChangeBalanceRequest(
                request_id=f"h{i}", user_id=1, currency="USD", type=1, amount="1", memo="m" * 250
            )
            for i in range(70_000)
        ]
    ).SerializeToString()
    assert len(huge) > 16 << 20
    assert (
        call(open_server, "ChangeBalances", huge, timeout=30) == grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert call(open_server, "HealthCheck", b"") == grpc.StatusCode.OK


def test_too_many_concurrent_calls_get_resource_exhausted(open_server: ServerProcess) -> None:
    """Past LEDGERD_MAX_CONCURRENT_RPCS (64 here) calls are refused, not queued without bound."""

    async def flood() -> list[grpc.StatusCode]:
        async with grpc.aio.insecure_channel(open_server.target) as channel:
            stub = channel.unary_unary(
                SERVICE + "ChangeBalance", request_serializer=None, response_deserializer=None
            )

            async def one(i: int) -> grpc.StatusCode:
                body = pb.ChangeBalanceRequest(
                    request_id=f"flood-{os.getpid()}-{i}",
                    user_id=i + 1,
                    currency="USD",
                    type=1,
                    amount="1",
                    wait=True,
                ).SerializeToString()
                try:
                    await stub(body, timeout=20)
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                accepted.add(f"flood-{os.getpid()}-{i}")
                return grpc.StatusCode.OK

            return await asyncio.gather(*(one(i) for i in range(400)))

    codes = asyncio.run(flood())
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert call(open_server, "HealthCheck", b"") == grpc.StatusCode.OK


def test_afterwards_the_store_holds_exactly_the_accepted_requests(
    open_server: ServerProcess,
) -> None:
    """After all of the above, audit passes and the outbox has one row per accepted request."""
    report = open_server.wait_settled()
    assert report["ok"], report["problems"]
    assert sum(report["requests"].values()) == len(accepted)
