"""Speed, not behaviour: the emulator's HTTP server and a few of moto's per-request costs.

The lifecycle benchmark measures the tool's own overhead against this emulator, so
every millisecond the emulator spends per request counts (a no-op run makes ~130
calls). Nothing here changes what a client is answered:

- `KeepAliveRequestHandler`: werkzeug's dev server sends `Connection: close` on every
  answer, so each call paid a new TCP connection and a new server thread (and the
  server thread then waited up to 10 ms for the client to close). The AWS SDKs keep
  connections alive; this handler lets them, where the answer's framing is sure.
- `cache_moto_lookups()`: two lookups moto repeats on every request, whose results
  cannot change while the server runs, are computed once.
"""

from __future__ import annotations

import io
import selectors
import threading
from typing import Any, Callable, Iterable

import werkzeug.serving
from moto.moto_server.werkzeug_app import MotoRequestHandler

# Set per request by KeepAliveRequestHandler (the drain below runs in the same thread).
_KEEPING = threading.local()


class _DrainSelector:
    """werkzeug's run_wsgi, after each answer, reads whatever the client sent within
    10 ms and discards it: right when the connection closes (the client then sees the
    answer, not a reset), wrong on a kept-alive connection, where it would swallow the
    client's next request. It is skipped on a kept connection: there, the request body
    has been read in full before the app ran (KeepAliveRequestHandler.make_environ)."""

    def __init__(self) -> None:
        self._real = None if getattr(_KEEPING, "active", False) else selectors.DefaultSelector()

    def register(self, *args: Any, **kwargs: Any) -> Any:
        return self._real.register(*args, **kwargs) if self._real else None

    def select(self, *args: Any, **kwargs: Any) -> Any:
        return self._real.select(*args, **kwargs) if self._real else []

    def close(self) -> None:
        if self._real:
            self._real.close()


class _SelectorsForWerkzeug:
    """Stands in for the `selectors` module inside werkzeug.serving only."""

    EVENT_READ = selectors.EVENT_READ
    DefaultSelector = _DrainSelector


class KeepAliveRequestHandler(MotoRequestHandler):
    """MotoRequestHandler that keeps HTTP/1.1 connections open between requests.

    The connection is kept only when both ends of the exchange are framed for sure:
    the request has a Content-Length (or no body), which is read in full before the
    app runs, and the answer's body matches its Content-Length (KeepAliveFraming).
    Otherwise (a chunked upload, a client's `Connection: close`, HTTP/1.0, a dropped
    connection, an answer whose length is off) the answer says `Connection: close` as
    before."""

    # Headers and body go out in two writes; without TCP_NODELAY the second waits for
    # the client's (delayed) ACK of the first on a kept-alive connection: up to 40 ms.
    disable_nagle_algorithm = True

    def handle_one_request(self) -> None:
        self._fintech_keep = False
        _KEEPING.active = False
        super().handle_one_request()

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked upload: close, as before
            return environ
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:  # unknown framing: close, as before
            return environ
        if length < 0:
            return environ
        # The whole body, read now, so that nothing of it is left on the connection
        # (the fidelity middleware buffers it anyway).
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self._fintech_keep = len(body) == length
        return environ

    def _keeps_connection(self) -> bool:
        return (
            self._fintech_keep
            and not self.close_connection  # the client asked to close, or HTTP/1.0
            and not getattr(self, "environ", {}).get(KeepAliveFraming.CLOSE)
        )

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._keeps_connection():
            _KEEPING.active = True  # no Connection: close, and no drain after the answer
            return
        super().send_header(keyword, value)

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True  # a `reset` fault or the kill hook: never reuse it
        super().connection_dropped(error, environ)


class KeepAliveFraming:
    """WSGI wrapper (outermost): makes sure an answer on a kept-alive connection holds
    exactly the bytes its headers announce. Answers to HEAD, 1xx, 204 and 304 carry no
    body (a client never reads one, so dropping it changes nothing it sees); an answer
    whose body length differs from its Content-Length closes the connection, as all
    answers did before. The fidelity middleware buffers every answer, so this holds
    one bytes object."""

    CLOSE = "fintech.close_connection"

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer: dict[str, Any] = {}

        def recording_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        try:
            code = int(str(answer.get("status", "500")).split()[0])
        except ValueError:
            code = 500
        if environ.get("REQUEST_METHOD") == "HEAD" or code < 200 or code in (204, 304):
            return [b""]
        for name, value in answer.get("headers", []):
            if name.lower() == "content-length" and value.strip() != str(len(body)):
                environ[self.CLOSE] = True
        return [body]


def install_keep_alive() -> type[KeepAliveRequestHandler]:
    """Returns the request handler for make_server (wrap the app in KeepAliveFraming)."""
    werkzeug.serving.selectors = _SelectorsForWerkzeug  # type: ignore[assignment]
    return KeepAliveRequestHandler


def cache_moto_lookups() -> None:
    """Two per-request lookups of moto, computed once:

    - `method_names_from_class(cls)` (moto.core.responses.call_action: is the action a
      method of the Response class?) runs inspect.getmembers over the class on every
      request, ~10% of moto's time on a Describe call. The classes are final once
      fidelity.install() has added its handlers (before the first request).
    - `DomainDispatcherApplication.get_backend_for_host(host)` matches the host against
      the URL patterns of every moto backend in turn; the answer for a host is fixed.
      Only found backends are remembered, so an unknown host still logs moto's hint.
    """
    import moto.core.responses as responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    method_names = responses.method_names_from_class
    names_by_class: dict[type, list[str]] = {}

    def cached_method_names(clazz: Any) -> list[str]:
        names = names_by_class.get(clazz)
        if names is None:
            names = names_by_class[clazz] = method_names(clazz)
        return names

    responses.method_names_from_class = cached_method_names  # type: ignore[assignment]

    backend_for_host = DomainDispatcherApplication.get_backend_for_host
    backends_by_host: dict[str | None, Any] = {}

    def cached_backend_for_host(self: Any, host: str | None) -> Any:
        backend = backends_by_host.get(host)
        if backend is None:
            backend = backend_for_host(self, host)
            if backend:
                backends_by_host[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = cached_backend_for_host  # type: ignore[method-assign]
