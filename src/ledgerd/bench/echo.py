"""A bare grpc.aio server answering ChangeBalance with no work: Python gRPC's own ceiling.

Run as ``python -m ledgerd.bench.echo PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import grpc

from ledgerd.v1 import balance_pb2 as pb

METHOD = "/ledgerd.v1.BalanceService/ChangeBalance"


async def serve(port: int) -> None:
    async def change_balance(request: pb.ChangeBalanceRequest, _: Any) -> pb.ChangeResult:
        return pb.ChangeResult(request_id=request.request_id, status=pb.PENDING)

    handler = grpc.method_handlers_generic_handler(
        "ledgerd.v1.BalanceService",
        {
            "ChangeBalance": grpc.unary_unary_rpc_method_handler(
                change_balance,
                request_deserializer=pb.ChangeBalanceRequest.FromString,
                response_serializer=pb.ChangeResult.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
