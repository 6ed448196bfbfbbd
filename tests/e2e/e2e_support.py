"""Shared helpers of the end-to-end tests (the reusable ones live in the harness)."""

from __future__ import annotations

import grpc
from harness import production_env
from harness.load import (
    Load,
    Model,
    balance_of,
    change,
    final_status,
    new_request_id,
    new_user,
)

__all__ = [
    "Load",
    "Model",
    "balance_of",
    "change",
    "final_status",
    "new_request_id",
    "new_user",
    "rpc_code",
    "stack_env",
]


def stack_env(stack: str) -> dict[str, str]:
    """The server settings of a stack (conftest's STACKS); empty for the embedded one."""
    if stack == "sharded":
        return production_env(shards=2)
    return production_env() if stack == "production" else {}


def rpc_code(call: object) -> grpc.StatusCode:
    """The status code of a failed call, for pytest.raises(grpc.RpcError) blocks."""
    assert isinstance(call, grpc.RpcError)
    code: grpc.StatusCode = call.code()  # type: ignore[attr-defined]
    return code
