"""WSGI middleware: serialises requests into moto, logs them, serves /_fintech/.

- Every AWS request runs under one lock (moto's backends are not thread-safe),
  after TIMELINE.pump() has applied the state transitions that are due.
- Every AWS request is logged (GET /_fintech/requests; DELETE clears the log):
  {"ts", "method", "service", "region", "operation", "status", "latency_ms",
   "params", "path", "error", "user_agent", "invocation_id", "attempt",
   "moto_status", "fault", "killed"}. The user agent carries the SDK's app
  name, which fintech-infra sets per stack, so a test can pick one run's
  requests out of a log shared by concurrent tests.
- Injected faults and the kill hook (fidelity/faults.py, set in /_fintech/config)
  are applied here, around the call into moto.
- /_fintech/events, /_fintech/config, /_fintech/health, /_fintech/patches.
- POST /moto-api/reset (moto's own reset) also forgets the fidelity state.

The paths /_fintech/ and /moto-api/ are not AWS paths and are never logged.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from . import cbor_bridge
from .faults import FAULTS, KILL, Faults, KillHook, drop_connection, error_answer
from .patching import describe_rules
from .timeline import SETTINGS, TIMELINE

PREFIX = "/_fintech/"

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/aws4_request")
_XML_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_ATTEMPT = re.compile(r"attempt=(\d+)")


def config_dict() -> dict[str, Any]:
    return {**SETTINGS.as_dict(), "faults": FAULTS.as_dict(), "kill_after_mutations": KILL.as_dict()}


def update_config(payload: Any) -> None:
    """Apply a POST /_fintech/config body; every value is checked before any is applied."""
    if not isinstance(payload, dict):
        raise ValueError("the config must be a JSON object")
    faults = Faults.parse(payload["faults"]) if "faults" in payload else None
    kill = KillHook.parse(payload["kill_after_mutations"]) if "kill_after_mutations" in payload else None
    SETTINGS.update(payload)
    if "faults" in payload:
        FAULTS.apply(faults)
    if "kill_after_mutations" in payload:
        KILL.apply(kill)


def _flat_form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _shorten(value: Any, limit: int = 2048) -> Any:
    """Keep the log small: long strings (zip files, policies) become a marker."""
    if isinstance(value, str) and len(value) > limit:
        return f"<{len(value)} chars>"
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    return value


def _rest_operation(service: str | None, environ: dict[str, Any]) -> str | None:
    """Name the REST operation (e.g. DeleteDistribution) with moto's own router."""
    if not service:
        return None
    try:
        from moto.core.request import Request
        from moto.core.routing import get_service_router

        operation, _ = get_service_router(service).match(Request(dict(environ)))
        return operation.name
    except Exception:
        return None


def _error_code(status: int, headers: list[tuple[str, str]], body: bytes) -> str | None:
    if status < 400:
        return None
    for name, value in headers:
        if name.lower() == "x-amzn-errortype" and value:
            return value.split(":")[0].split("#")[-1]
        if name.lower() == "x-amzn-query-error" and value:  # CBOR answers (cbor_bridge)
            return value.split(";")[0]
    match = _XML_CODE.search(body)
    if match:
        return match.group(1).decode()
    try:
        data = json.loads(body)
        code = data.get("__type") or data.get("code") or data.get("Code")
        return str(code).split("#")[-1] if code else None
    except Exception:
        return None


_REASONS = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class FintechMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = TIMELINE.lock  # one lock for moto calls and transitions
        self.log: list[dict[str, Any]] = []
        self.log_lock = threading.Lock()

    # -- WSGI entry point -------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) or path + "/" == PREFIX:
            return self._fintech(environ, start_response, path[len(PREFIX):].strip("/"))
        if path.startswith("/moto-api"):
            with self.lock:
                if path.startswith("/moto-api/reset"):
                    TIMELINE.reset()
                status_line, headers, body = self._call_app(environ)
            start_response(status_line, headers)
            return [body]
        return self._aws(environ, start_response)

    def _call_app(
        self,
        environ: dict[str, Any],
        cbor: tuple[str, str] | None = None,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Calls moto; its answer (status line, headers, body), buffered. With `cbor`
        (target prefix, operation), moto's JSON answer is re-encoded as the CBOR the
        client asked for."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status_line = str(captured.get("status", "500"))
        headers = captured.get("headers", [])
        if cbor is not None:
            status = int(status_line.split()[0])
            headers, body = cbor_bridge.to_cbor_response(cbor[0], cbor[1], status, headers, body)
        return status_line, headers, body

    def _aws(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.time()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            body = environ["wsgi.input"].read(length)
        elif environ.get("wsgi.input_terminated"):  # chunked upload: read to the end
            body = environ["wsgi.input"].read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)

        scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = (scope.group(1), scope.group(2)) if scope else (None, None)
        content_type = environ.get("CONTENT_TYPE", "")
        query = _flat_form(environ.get("QUERY_STRING", "").encode())
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")  # before the CBOR bridge rewrites it
        user_agent = environ.get("HTTP_X_AMZ_USER_AGENT") or environ.get("HTTP_USER_AGENT", "")
        params: Any = {}
        operation: str | None = None
        protocol = "rest"
        cbor = cbor_bridge.match(environ)
        if cbor is not None:
            protocol = "cbor"
            operation = cbor[1]
            try:
                params = cbor_bridge.decode_request(body)
            except Exception as error:  # noqa: BLE001 - a bad body is the client's error
                return self._json(start_response, 400, {"__type": "SerializationException", "message": str(error)})
            cbor_bridge.to_json_request(environ, cbor[0], cbor[1], params)
        elif "x-www-form-urlencoded" in content_type or "Action" in query:
            protocol = "ec2" if service == "ec2" else "query"
            params = {**query, **(_flat_form(body) if body else {})}
            operation = params.get("Action")
        elif target:
            protocol = "json"
            operation = target.split(".", 1)[-1]
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                params = {}
        else:
            params = dict(query)
            if body and "json" in content_type:
                try:
                    params = {**params, **json.loads(body)}
                except (ValueError, TypeError):
                    pass

        fault: tuple[str, str] | None = None
        killed: tuple[int, int] | None = None
        moto: tuple[str, list[tuple[str, str]], bytes] | None = None
        with self.lock:
            TIMELINE.pump()
            if operation is None:
                operation = _rest_operation(service, environ)
            fault = FAULTS.draw(service, operation, user_agent)
            if fault is None or fault[1] == "after":
                moto = self._call_app(environ, cbor)
                killed = KILL.observe(operation, method, int(moto[0].split()[0]), user_agent)
                if killed is not None:
                    TIMELINE.record("kill", killed[0], killed[1], operation or "")

        moto_status = int(moto[0].split()[0]) if moto is not None else None
        answer: tuple[str, list[tuple[str, str]], bytes] | None = moto
        if killed is None and fault is not None:
            if fault[0] == "reset":
                answer = None
            else:
                code, fault_headers, fault_body = error_answer(fault[0], service, protocol, content_type, method)
                if cbor is not None:
                    fault_headers, fault_body = cbor_bridge.to_cbor_response(
                        cbor[0], cbor[1], code, fault_headers, fault_body
                    )
                answer = (f"{code} {_REASONS.get(code, 'Error')}", fault_headers, fault_body)
        elif killed is not None:
            answer = None

        status = int(answer[0].split()[0]) if answer is not None else None
        params = _shorten(params)
        http = f"{method} {path}"
        attempt = _ATTEMPT.search(environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        entry = {
            "ts": started,
            "method": environ.get("REQUEST_METHOD"),
            "service": service,
            "region": region,
            "operation": operation or http,
            "status": status,
            "latency_ms": round((time.time() - started) * 1000, 3),
            "params": params,
            "path": path,
            "error": _error_code(status, answer[1], answer[2]) if answer is not None else None,
            "user_agent": user_agent,
            "invocation_id": environ.get("HTTP_AMZ_SDK_INVOCATION_ID"),
            "attempt": int(attempt.group(1)) if attempt else None,
            "moto_status": moto_status,
            "fault": f"{fault[0]}/{fault[1]}" if fault is not None else None,
            "killed": killed is not None,
        }
        with self.log_lock:
            self.log.append(entry)
        if answer is None:
            drop_connection(environ)
        start_response(answer[0], answer[1])
        return [answer[2]]

    # -- /_fintech/ ---------------------------------------------------------
    def _fintech(self, environ: dict[str, Any], start_response: Callable[..., Any], name: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if name == "health" and method in ("GET", "HEAD"):
                return self._json(start_response, 200, {"status": "ok"})
            if name == "requests" and method == "GET":
                with self.log_lock:
                    return self._json(start_response, 200, list(self.log))
            if name == "requests" and method == "DELETE":
                with self.log_lock:
                    self.log.clear()
                return self._json(start_response, 200, [])
            if name == "events" and method == "GET":
                return self._json(start_response, 200, TIMELINE.events())
            if name == "events" and method == "DELETE":
                TIMELINE.clear_events()
                return self._json(start_response, 200, [])
            if name == "config" and method == "GET":
                with self.lock:
                    return self._json(start_response, 200, config_dict())
            if name == "config" and method in ("POST", "PUT"):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
                with self.lock:
                    update_config(payload)
                    return self._json(start_response, 200, config_dict())
            if name == "patches" and method == "GET":
                return self._json(start_response, 200, describe_rules())
        except (ValueError, TypeError) as error:
            return self._json(start_response, 400, {"error": str(error)})
        return self._json(start_response, 404, {"error": f"no such endpoint: {method} {PREFIX}{name}"})

    @staticmethod
    def _json(start_response: Callable[..., Any], status: int, payload: Any) -> Iterable[bytes]:
        body = json.dumps(payload, default=str).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
