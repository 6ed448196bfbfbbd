"""The standard services served beside BalanceService: grpc.health.v1 and server reflection.

* Health answers Check, Watch and List (List is the 2024 addition to health.proto that
  grpcio-health-checking declares but does not implement: without it, a call is
  UNIMPLEMENTED and grpc logs a traceback).
* Reflection is offered as ``grpc.reflection.v1`` (what current grpcurl, Postman and
  grpc-java ask first) and as the older ``grpc.reflection.v1alpha``. grpcio-reflection
  only implements v1alpha; the two protocols are the same messages under another
  package name, so one servicer serves both and only the method path differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

HEALTH_SERVICE = health.SERVICE_NAME
REFLECTION_V1ALPHA_SERVICE = reflection.SERVICE_NAME
REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection"
_V1ALPHA_PACKAGE = reflection_pb2.DESCRIPTOR.package
_V1_PACKAGE = "grpc.reflection.v1"


class HealthServicer(health.aio.HealthServicer):  # type: ignore[name-defined,misc]
    """grpc.health.v1 with ``List``: every service's status in one answer."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        # The base class keeps the statuses in ``_server_status`` and offers no accessor.
        statuses = dict(self._server_status)
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in statuses.items()
            }
        )


def enable_reflection(
    server: grpc.aio.Server,
    services: tuple[str, ...],
    *,
    wrap: Callable[[str, Any], Any] = lambda _, handler: handler,
) -> None:
    """Serve reflection for ``services`` (and for itself) under v1 and v1alpha; ``wrap``
    gets each method's handler with its path (the gatekeeper counts and logs calls)."""
    _register_v1_descriptor(descriptor_pool.Default())
    names = (*services, HEALTH_SERVICE, REFLECTION_V1_SERVICE, REFLECTION_V1ALPHA_SERVICE)
    servicer = reflection.aio.ReflectionServicer(names)  # type: ignore[attr-defined]
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (REFLECTION_V1_SERVICE, REFLECTION_V1ALPHA_SERVICE):
        wrapped = wrap(f"/{service}/ServerReflectionInfo", handler)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": wrapped}),)
        )


def _register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add grpc/reflection/v1/reflection.proto to ``pool``, so that clients can describe v1.

    It is v1alpha's file with the package renamed; no package on PyPI ships its
    generated code for Python.
    """
    try:
        pool.FindServiceByName(REFLECTION_V1_SERVICE)
        return
    except KeyError:
        pass
    renamed = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(renamed)
    renamed.name = "grpc/reflection/v1/reflection.proto"
    renamed.package = _V1_PACKAGE
    renamed.ClearField("options")
    for message in renamed.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # scalar fields have none; setting "" would add one
                field.type_name = field.type_name.replace(
                    f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
                )
    for service in renamed.service:
        for method in service.method:
            method.input_type = method.input_type.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
            method.output_type = method.output_type.replace(_V1ALPHA_PACKAGE, _V1_PACKAGE)
    pool.Add(renamed)
