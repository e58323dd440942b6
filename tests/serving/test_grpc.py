"""The Open Inference Protocol's gRPC endpoint answers as the REST one does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import grpc
import pytest
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as stubs
from mlserver.grpc.converters import ModelInferRequestConverter, ModelInferResponseConverter
from mlserver.types import InferenceRequest

from mlops_kit.verify.v2 import decode_outputs, encode_dataframe

if TYPE_CHECKING:
    from tests.support.serving import Models, Served

pytest_plugins = ["tests.support.serving"]

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def model_infer(served: Served, body: dict) -> pb.ModelInferResponse:
    request = ModelInferRequestConverter.from_types(
        InferenceRequest.model_validate(body), model_name="wine", model_version=None
    )
    with grpc.insecure_channel(f"127.0.0.1:{served.record.grpc_port}") as channel:
        return stubs.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)


def test_a_grpc_request_without_an_id_is_answered(staging_server: Served, models: Models) -> None:
    rows = models.rows(4)
    reply = model_infer(staging_server, encode_dataframe(rows))
    assert UUID4.fullmatch(reply.id)  # protobuf's unset id "" is no id: a fresh one is made
    answer = ModelInferResponseConverter.to_types(reply).model_dump(exclude_none=True)
    assert list(decode_outputs(answer)) == list(models.predictions_v1[rows.index])


def test_grpc_refuses_what_rest_refuses(staging_server: Served, models: Models) -> None:
    assert (
        model_infer(staging_server, {**encode_dataframe(models.rows(1)), "id": "r-1"}).id == "r-1"
    )
    body = encode_dataframe(models.rows(1))
    body["inputs"] = body["inputs"][1:]
    with pytest.raises(grpc.RpcError) as refused:
        model_infer(staging_server, body)
    assert refused.value.code() != grpc.StatusCode.INTERNAL
    assert "alcohol" in str(refused.value.details())
    # A client's mistake is a line in the log, not a traceback (as over REST).
    assert "Traceback" not in staging_server.target.log_path("wine").read_text()
