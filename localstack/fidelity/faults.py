"""Fault injection and the kill hook: a throttling, flaky AWS and a crashing client.

Both are set with POST /_fintech/config (see the README's introspection table) and
applied by the middleware (introspection.py) to AWS requests only, never to
/_fintech/ or /moto-api/ paths.

- `faults`: with probability `rate`, an eligible request gets a fault instead of its
  answer: `throttle` (the service's own throttling error, in its protocol and HTTP
  status), `500`, `503` (InternalError / ServiceUnavailable) or `reset` (the
  connection is closed without an answer). `before` faults come before moto sees the
  request (nothing happened); `after` faults come after moto carried it out (the
  answer is lost, what an idempotent retry must survive). The n-th eligible request's
  fate depends only on `seed` and n: every eligible request draws exactly three
  numbers from `random.Random(seed)` (fault?, kind, when), in the order the
  middleware serves requests.
- `kill_after_mutations`: after moto has carried out the K-th successful mutating
  request, SIGKILL goes to the tool under test and the connection is dropped (the
  tool dies with the call done but unanswered, as in a crash).

The throttling codes are the ones botocore 1.44's models give each service (Lambda
TooManyRequestsException 429, Cloud Map RequestLimitExceeded 429, the tagging API
ThrottledException, SQS RequestThrottled) and otherwise the ones AWS sends for a
protocol (EC2 RequestLimitExceeded 503, query Throttling 400, JSON ThrottlingException
400, S3 SlowDown 503); each is in the AWS SDK for Rust's
`aws_runtime::retries::classifiers::THROTTLING_ERRORS`, and 500/503 are in its
transient status codes, so its standard retry strategy retries every fault.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import uuid
from typing import Any

KINDS = ("throttle", "500", "503", "reset")
WHENS = ("before", "after", "both")

# The AWS SDK for Rust's throttling codes (aws-runtime 1.10, retries/classifiers.rs).
SDK_THROTTLING_ERRORS = (
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
)
SDK_TRANSIENT_STATUS_CODES = (500, 502, 503, 504)

# Throttling error per credential-scope service where it is not the protocol's default:
# (code, HTTP status, message).
THROTTLE_BY_SERVICE: dict[str, tuple[str, int, str]] = {
    "ec2": ("RequestLimitExceeded", 503, "Request limit exceeded."),
    "s3": ("SlowDown", 503, "Please reduce your request rate."),
    "cloudfront": ("Throttling", 400, "Rate exceeded"),
    "lambda": ("TooManyRequestsException", 429, "Rate exceeded"),
    "sqs": ("RequestThrottled", 400, "Request is throttled."),
    "tagging": ("ThrottledException", 400, "Rate exceeded"),
    "servicediscovery": ("RequestLimitExceeded", 429, "Rate exceeded"),
    "dynamodb": ("ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."),
}
# By protocol otherwise: query (RDS, ELBv2, IAM, STS, SNS, ...) and CBOR CloudWatch
# (awsQueryCompatible) answer the query code; JSON and REST-JSON services
# ThrottlingException; other REST-XML services (Route 53) Throttling.
THROTTLE_BY_PROTOCOL: dict[str, tuple[str, int, str]] = {
    "query": ("Throttling", 400, "Rate exceeded"),
    "cbor": ("Throttling", 400, "Rate exceeded"),
    "json": ("ThrottlingException", 400, "Rate exceeded"),
    "rest-json": ("ThrottlingException", 400, "Rate exceeded"),
    "rest-xml": ("Throttling", 400, "Rate exceeded"),
}
SERVER_ERRORS: dict[str, tuple[str, int, str]] = {
    "500": ("InternalError", 500, "We encountered an internal error. Please try again."),
    "503": ("ServiceUnavailable", 503, "The service is unavailable. Please try again later."),
}
# JSON services that are awsQueryCompatible: the SDK reads the code from x-amzn-query-error.
QUERY_COMPATIBLE = {"sqs"}
REST_XML = {"s3", "cloudfront", "route53"}

READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Scan", "Query")


def is_mutating(operation: str | None, method: str | None) -> bool:
    """fintech_infra::aws::is_mutating: not a Describe/Get/List/Head/Lookup/Search/Scan/
    Query read. An unresolved REST call ("GET /path") counts as a read for GET/HEAD."""
    if not operation:
        return False
    if operation.startswith(("GET /", "HEAD /")) or (method or "").upper() in ("HEAD",):
        return False
    return not operation.startswith(READ_PREFIXES)


def _strings(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} must be a list of strings or null")
    return list(value)


def _integer(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}")
    return value


def _substring(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string or null")
    return value


def _unknown(value: dict[str, Any], allowed: set[str], key: str) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise ValueError(f"{key}: unknown field(s) {', '.join(extra)}")


class Faults:
    """The `faults` setting and its deterministic draw."""

    FIELDS = {"rate", "seed", "kinds", "when", "services", "operations", "user_agent_contains", "max_faults"}

    def __init__(self) -> None:
        self.config: dict[str, Any] | None = None
        self._rng = random.Random(0)
        self.eligible = 0
        self.injected = 0

    @classmethod
    def parse(cls, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("faults must be an object or null")
        _unknown(value, cls.FIELDS, "faults")
        rate = value.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError("faults.rate must be a number in [0, 1]")
        seed = value.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("faults.seed must be an integer")
        kinds = value.get("kinds", list(KINDS))
        if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
            raise ValueError(f"faults.kinds must be a non-empty list of {', '.join(KINDS)}")
        when = value.get("when", "before")
        if when not in WHENS:
            raise ValueError("faults.when must be before, after or both")
        max_faults = value.get("max_faults")
        return {
            "rate": float(rate),
            "seed": seed,
            "kinds": list(dict.fromkeys(kinds)),
            "when": when,
            "services": _strings(value.get("services"), "faults.services"),
            "operations": _strings(value.get("operations"), "faults.operations"),
            "user_agent_contains": _substring(value.get("user_agent_contains"), "faults.user_agent_contains"),
            "max_faults": None if max_faults is None else _integer(max_faults, "faults.max_faults", 0),
        }

    def apply(self, config: dict[str, Any] | None) -> None:
        self.config = config
        self._rng = random.Random(config["seed"] if config else 0)
        self.eligible = 0
        self.injected = 0

    def as_dict(self) -> dict[str, Any] | None:
        if self.config is None:
            return None
        return {**self.config, "eligible": self.eligible, "injected": self.injected}

    def draw(self, service: str | None, operation: str | None, user_agent: str) -> tuple[str, str] | None:
        """(kind, before|after) for this request, or None. Call under the request lock."""
        c = self.config
        if c is None:
            return None
        if c["services"] is not None and service not in c["services"]:
            return None
        if c["operations"] is not None and operation not in c["operations"]:
            return None
        if c["user_agent_contains"] is not None and c["user_agent_contains"] not in user_agent:
            return None
        if c["max_faults"] is not None and self.injected >= c["max_faults"]:
            return None
        self.eligible += 1
        hit, pick, side = self._rng.random(), self._rng.random(), self._rng.random()
        if hit >= c["rate"]:
            return None
        kind = c["kinds"][min(int(pick * len(c["kinds"])), len(c["kinds"]) - 1)]
        when = c["when"] if c["when"] != "both" else ("before" if side < 0.5 else "after")
        self.injected += 1
        return kind, when


class KillHook:
    """The `kill_after_mutations` setting: SIGKILL the tool after its K-th mutation."""

    FIELDS = {"count", "pid", "user_agent_contains"}

    def __init__(self) -> None:
        self.config: dict[str, Any] | None = None
        self.mutations = 0

    @classmethod
    def parse(cls, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("kill_after_mutations must be an object or null")
        _unknown(value, cls.FIELDS, "kill_after_mutations")
        count = _integer(value.get("count"), "kill_after_mutations.count", 1)
        pid = _integer(value.get("pid"), "kill_after_mutations.pid", 2)
        if pid == os.getpid():
            raise ValueError("kill_after_mutations.pid is the emulator itself")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise ValueError(f"kill_after_mutations.pid: no process {pid}") from None
        except PermissionError:
            pass
        return {
            "count": count,
            "pid": pid,
            "user_agent_contains": _substring(value.get("user_agent_contains"), "kill_after_mutations.user_agent_contains"),
        }

    def apply(self, config: dict[str, Any] | None) -> None:
        self.config = config
        self.mutations = 0

    def as_dict(self) -> dict[str, Any] | None:
        if self.config is None:
            return None
        return {**self.config, "mutations": self.mutations}

    def observe(self, operation: str | None, method: str | None, moto_status: int, user_agent: str) -> tuple[int, int] | None:
        """Count a request moto carried out; (pid, K) when this one is the K-th mutation
        (the hook then clears itself). Call under the request lock."""
        c = self.config
        if c is None or moto_status >= 400 or not is_mutating(operation, method):
            return None
        if c["user_agent_contains"] is not None and c["user_agent_contains"] not in user_agent:
            return None
        self.mutations += 1
        if self.mutations < c["count"]:
            return None
        self.apply(None)
        try:
            os.kill(c["pid"], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return c["pid"], c["count"]


FAULTS = Faults()
KILL = KillHook()


def drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection without an answer (a TCP reset) and unwind the
    WSGI call: werkzeug treats ConnectionError as a dropped connection and writes
    nothing. SO_LINGER 0 makes the close a RST; SHUT_RD ends the keep-alive loop."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        sock.close()  # the real close happens when werkzeug closes its reader
    raise ConnectionResetError("fintech emulator: connection dropped")


def _request_id() -> str:
    return str(uuid.uuid4())


def error_answer(
    kind: str, service: str | None, protocol: str, content_type: str, method: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP answer (status, headers, body) of an injected `throttle`/`500`/`503`
    fault, in the protocol of the request. protocol: ec2 | query | json | cbor | rest
    (a CBOR answer is returned in its JSON form; the caller encodes it)."""
    if protocol == "rest":
        protocol = "rest-xml" if service in REST_XML else "rest-json"
    if kind == "throttle":
        code, status, message = THROTTLE_BY_SERVICE.get(service or "") or THROTTLE_BY_PROTOCOL.get(
            protocol, THROTTLE_BY_PROTOCOL["query"]
        )
    else:
        code, status, message = SERVER_ERRORS[kind]
    fault_type = "Receiver" if status >= 500 and kind != "throttle" else "Sender"
    rid = _request_id()
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif protocol == "query" or (protocol == "rest-xml" and service != "s3"):
        xmlns = ' xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"' if service == "cloudfront" else ""
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse{xmlns}><Error><Type>{fault_type}</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)]
    elif protocol == "rest-xml":  # S3
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{rid}</RequestId>"
            f"<HostId>{uuid.uuid4().hex}</HostId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", rid)]
    else:  # json, rest-json, cbor (encoded by the caller)
        payload: dict[str, Any] = {"__type": code, "message": message}
        if service == "lambda" and code == "TooManyRequestsException":
            payload = {"Type": "User", "message": message, "Reason": "CallerRateLimitExceeded"}
        body = json.dumps(payload).encode()
        if protocol == "json":
            json_type = content_type if content_type.startswith("application/x-amz-json") else "application/x-amz-json-1.1"
        else:
            json_type = "application/json"
        headers = [("Content-Type", json_type), ("x-amzn-RequestId", rid)]
        if protocol != "cbor":
            headers.append(("x-amzn-ErrorType", code))
        if service in QUERY_COMPATIBLE or protocol == "cbor":
            headers.append(("x-amzn-query-error", f"{code};{fault_type}"))
        if status == 429:
            headers.append(("Retry-After", "1"))
    if method == "HEAD":
        body = b""
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body
