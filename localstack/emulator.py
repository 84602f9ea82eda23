#!/usr/bin/env python3
"""Launcher of the fintech-infra AWS emulator: moto's server + the fidelity layer.

Run by localstack/start (which also builds the virtualenv); it can be run by
hand too:  .venv/bin/python emulator.py --port 0 --endpoint-file /tmp/ep
It binds 127.0.0.1 (port 0 = a free port), writes its pid and endpoint URL to
the given files once it listens, and serves until SIGTERM/SIGINT, or until the
process named by --watch-pid is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

# moto only loads AWS managed IAM policies (e.g. AmazonECSTaskExecutionRolePolicy)
# when this is set before it is imported.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _cache_module_list() -> None:
    """Speed, not behaviour: moto's dispatcher asks `list_of_moto_modules()` on every
    request, which lists moto's package directory and stats each entry (about half of the
    time moto spends on a simple Describe call, all of it under the emulator's lock). The
    directory does not change while the server runs, so the list is computed once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--lambda-eni-linger", type=float, default=0.0)
    parser.add_argument("--watch-pid", type=int, default=0)
    parser.add_argument("--endpoint-file")
    parser.add_argument("--pid-file")
    args = parser.parse_args()

    import fidelity
    from fidelity.introspection import FintechMiddleware
    from fidelity.serving import KeepAliveFraming, cache_moto_lookups, install_keep_alive
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    fidelity.install(time_scale=args.time_scale, lambda_eni_linger=args.lambda_eni_linger)
    _cache_module_list()
    cache_moto_lookups()  # speed: see fidelity/serving.py
    # Keep-alive connections (speed: no new TCP connection and thread per request);
    # KeepAliveFraming keeps every answer's framing exact. See fidelity/serving.py.
    app = KeepAliveFraming(FintechMiddleware(DomainDispatcherApplication(create_backend_app)))
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=install_keep_alive()
    )
    port = server.server_address[1]
    endpoint = f"http://{args.host}:{port}"
    os.environ["MOTO_PORT"] = str(port)

    def shutdown(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)

    if args.watch_pid:
        def watch() -> None:
            while not _process_gone(args.watch_pid):
                time.sleep(1)
            print(f"watched process {args.watch_pid} is gone; exiting", flush=True)
            shutdown()

        threading.Thread(target=watch, daemon=True).start()

    if args.pid_file:
        _write_atomically(args.pid_file, f"{os.getpid()}\n")
    if args.endpoint_file:
        _write_atomically(args.endpoint_file, endpoint + "\n")
    print(
        f"fintech emulator (moto + fidelity) listening on {endpoint} "
        f"time_scale={args.time_scale} lambda_eni_linger={args.lambda_eni_linger}",
        flush=True,
    )
    server.serve_forever()
    print("emulator stopped", flush=True)


if __name__ == "__main__":
    main()
