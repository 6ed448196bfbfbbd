"""Standard gRPC services beside BalanceService: health (with List), reflection v1 and v1alpha."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

BALANCE_SERVICE = "ledgerd.v1.BalanceService"
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"


def reflect(
    channel: grpc.Channel, service: str, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    """One reflection exchange. v1 and v1alpha are the same messages in another package,
    so v1alpha's generated classes encode and decode both."""
    call = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    (answer,) = list(call(iter([request]), timeout=5))
    return answer


def test_health_list_reports_every_service_serving(channel: grpc.Channel) -> None:
    answer = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
    assert set(answer.statuses) == {"", BALANCE_SERVICE}
    for status in answer.statuses.values():
        assert status.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_v1_and_v1alpha_list_the_same_services(channel: grpc.Channel) -> None:
    listed = {}
    for service in (REFLECTION_V1, REFLECTION_V1ALPHA):
        answer = reflect(channel, service, reflection_pb2.ServerReflectionRequest(list_services=""))
        listed[service] = {entry.name for entry in answer.list_services_response.service}
    assert listed[REFLECTION_V1] == listed[REFLECTION_V1ALPHA]
    assert listed[REFLECTION_V1] == {
        BALANCE_SERVICE,
        "grpc.health.v1.Health",
        REFLECTION_V1,
        REFLECTION_V1ALPHA,
    }


def test_reflection_v1_describes_the_balance_service_and_itself(channel: grpc.Channel) -> None:
    described = {}
    for symbol in (BALANCE_SERVICE, REFLECTION_V1):
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
        answer = reflect(channel, REFLECTION_V1, request)
        assert not answer.HasField("error_response"), answer.error_response.error_message
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in answer.file_descriptor_response.file_descriptor_proto
        ]
        described[symbol] = {proto.package: proto for proto in files}
    balance = described[BALANCE_SERVICE]["ledgerd.v1"]
    assert balance.name == "ledgerd/v1/balance.proto"
    assert [method.name for method in balance.service[0].method][:2] == [
        "GetBalance",
        "ChangeBalance",
    ]
    reflection_v1 = described[REFLECTION_V1]["grpc.reflection.v1"]
    (method,) = reflection_v1.service[0].method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
