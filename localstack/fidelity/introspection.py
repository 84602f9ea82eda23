"""WSGI middleware: serialises requests into moto, logs them, serves /_fintech/.

- Every AWS request runs under one lock (moto's backends are not thread-safe),
  after TIMELINE.pump() has applied the state transitions that are due.
- Every AWS request is logged (GET /_fintech/requests; DELETE clears the log):
  {"ts", "method", "service", "region", "operation", "status", "latency_ms",
   "params", "path", "error", "user_agent"}. The user agent carries the SDK's app
  name, which fintech-infra sets per stack, so a test can pick one run's
  requests out of a log shared by concurrent tests.
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
from .patching import describe_rules
from .timeline import SETTINGS, TIMELINE

PREFIX = "/_fintech/"

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/aws4_request")
_XML_CODE = re.compile(rb"<Code>([^<]+)</Code>")


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
                return self._call_app(environ, start_response)[3]
        return self._aws(environ, start_response)

    def _call_app(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        cbor: tuple[str, str] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes, list[bytes]]:
        """Calls moto and answers with its response, buffered; with `cbor` (target prefix,
        operation), moto's JSON answer is re-encoded as the CBOR the client asked for."""
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
        status = int(status_line.split()[0])
        headers = captured.get("headers", [])
        if cbor is not None:
            headers, body = cbor_bridge.to_cbor_response(cbor[0], cbor[1], status, headers, body)
        start_response(status_line, headers)
        return status, headers, body, [body]

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
        params: Any = {}
        operation: str | None = None
        cbor = cbor_bridge.match(environ)
        if cbor is not None:
            operation = cbor[1]
            try:
                params = cbor_bridge.decode_request(body)
            except Exception as error:  # noqa: BLE001 - a bad body is the client's error
                return self._json(start_response, 400, {"__type": "SerializationException", "message": str(error)})
            cbor_bridge.to_json_request(environ, cbor[0], cbor[1], params)
        elif "x-www-form-urlencoded" in content_type or "Action" in query:
            params = {**query, **(_flat_form(body) if body else {})}
            operation = params.get("Action")
        elif target:
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

        with self.lock:
            TIMELINE.pump()
            if operation is None:
                operation = _rest_operation(service, environ)
            status, headers, resp_body, result = self._call_app(environ, start_response, cbor)

        params = _shorten(params)
        http = f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
        entry = {
            "ts": started,
            "method": environ.get("REQUEST_METHOD"),
            "service": service,
            "region": region,
            "operation": operation or http,
            "status": status,
            "latency_ms": round((time.time() - started) * 1000, 3),
            "params": params,
            "path": environ.get("PATH_INFO", ""),
            "error": _error_code(status, headers, resp_body),
            "user_agent": environ.get("HTTP_X_AMZ_USER_AGENT") or environ.get("HTTP_USER_AGENT", ""),
        }
        with self.log_lock:
            self.log.append(entry)
        return result

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
                return self._json(start_response, 200, SETTINGS.as_dict())
            if name == "config" and method in ("POST", "PUT"):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
                with self.lock:
                    SETTINGS.update(payload)
                return self._json(start_response, 200, SETTINGS.as_dict())
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
