"""Smithy RPC v2 CBOR for moto: CloudWatch's current wire protocol.

AWS moved CloudWatch to the `smithy-rpc-v2-cbor` protocol in 2025, and the AWS
SDK for Rust (and botocore) now speak only that to it: `POST
/service/GraniteServiceVersion20100801/operation/DescribeAlarms` with a CBOR
body and the header `smithy-protocol: rpc-v2-cbor`. moto 5.2.5 answers
CloudWatch's JSON 1.0 protocol but knows nothing of CBOR; it answers such a
request with XML, which the SDK cannot read.

The bridge rewrites a CBOR request into the same operation in JSON 1.0 (the
target header, a JSON body), lets moto answer, and encodes moto's JSON answer
back into CBOR against botocore's model of the operation's output, so that
timestamps become CBOR tag 1 and blobs byte strings, as AWS sends them. Errors
keep their `__type` and, as the service is `awsQueryCompatible`, carry the
`x-amzn-query-error` header with the query-protocol code the SDK reports (moto
sends it for the errors it models; the bridge adds it where moto did not).

botocore's own CBOR parser and serializer do the encoding: no hand-written
CBOR, and the model is the one botocore ships with the pinned version.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from functools import lru_cache
from typing import Any

from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer

_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")

# Services served over CBOR by the pinned SDKs, by target prefix -> botocore name.
SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}

_PARSER = RpcV2CBORParser()
_SERIALIZER = RpcV2CBORSerializer()


def match(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(target prefix, operation) when this is an RPC v2 CBOR request for a known service."""
    if environ.get("HTTP_SMITHY_PROTOCOL", "").lower() != "rpc-v2-cbor":
        return None
    m = _PATH.match(environ.get("PATH_INFO", ""))
    if not m or m.group(1) not in SERVICES:
        return None
    return m.group(1), m.group(2)


@lru_cache(maxsize=None)
def _service_model(prefix: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(SERVICES[prefix])


def _jsonable(value: Any) -> Any:
    """CBOR-decoded values as the JSON protocol writes them."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return value


def decode_request(body: bytes) -> dict[str, Any]:
    """The request's parameters (a CBOR map), JSON-ready."""
    if not body:
        return {}
    value = _PARSER.parse_data_item(_PARSER.get_peekable_stream_from_bytes(body))
    return _jsonable(value) if isinstance(value, dict) else {}


def to_json_request(environ: dict[str, Any], prefix: str, operation: str, params: dict[str, Any]) -> None:
    """Rewrites the WSGI environ in place into the JSON 1.0 form of the same call."""
    import io

    body = json.dumps(params).encode()
    environ["PATH_INFO"] = "/"
    environ["CONTENT_TYPE"] = "application/x-amz-json-1.0"
    environ["HTTP_X_AMZ_TARGET"] = f"{prefix}.{operation}"
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(body)
    environ.pop("HTTP_SMITHY_PROTOCOL", None)


def _prune(value: Any, shape: Any) -> Any:
    """Drops what the model does not know (moto adds e.g. `Message` beside `message`) and
    turns base64 text back into bytes for blob members."""
    if shape is None or value is None:
        return None
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for k, v in value.items():
            member = shape.members.get(k)
            if member is not None and v is not None:
                out[k] = _prune(v, member)
        return out
    if kind == "list" and isinstance(value, list):
        return [_prune(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _prune(v, shape.value) for k, v in value.items()}
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind in ("double", "float") and isinstance(value, int):
        return float(value)
    return value


def _encode_text_map(items: dict[str, str]) -> bytes:
    """A CBOR map of text strings (error bodies have no model shape to serialise against)."""
    out = bytearray()
    info, num = _SERIALIZER._get_additional_info_and_num_bytes(len(items))
    out.extend(_SERIALIZER._get_initial_byte(_SERIALIZER.MAP_MAJOR_TYPE, info))
    if num:
        out.extend(len(items).to_bytes(num, "big"))
    for k, v in items.items():
        _SERIALIZER._serialize_type_string(out, k, None, None)
        _SERIALIZER._serialize_type_string(out, v, None, None)
    return bytes(out)


def to_cbor_response(
    prefix: str, operation: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> tuple[list[tuple[str, str]], bytes]:
    """moto's JSON answer as AWS's CBOR answer: (headers, body)."""
    keep = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if status >= 400:
        code = str(payload.get("__type") or status)
        message = str(payload.get("message") or payload.get("Message") or "")
        short = code.rsplit("#", 1)[-1]
        # moto already sends the query-protocol code for the errors it models; add it only
        # where it did not.
        if not any(k.lower() == "x-amzn-query-error" for k, _ in keep):
            fault = "Receiver" if status >= 500 else "Sender"
            keep.append(("x-amzn-query-error", f"{short};{fault}"))
        out = _encode_text_map({"__type": code, "message": message})
    else:
        op = _service_model(prefix).operation_model(operation)
        shape = op.output_shape
        out = bytearray()
        if shape is not None:
            _SERIALIZER._serialize_data_item(out, _prune(payload, shape) or {}, shape)
        else:
            out.extend(_encode_text_map({}))
        out = bytes(out)
    keep += [
        ("Content-Type", "application/cbor"),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("Content-Length", str(len(out))),
    ]
    return keep, out
