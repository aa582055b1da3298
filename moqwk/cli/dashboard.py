"""``moqwk dashboard``: optuna-dashboard on a run's study, read-only, with its constraints shown.

The storage view (constraint lists added, writes refused) is :mod:`moqwk.study.dashboard`; this
module serves it: optuna-dashboard's WSGI app on a small threaded ``wsgiref`` server, with the
URL printed first and the storage password masked.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from moqwk.cli._common import add_run_dir
from moqwk.errors import ConfigError

DEFAULT_PORT = 8080
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


class _ThreadingServer(WSGIServer):
    """One thread per request: the dashboard's page fires several API calls at once."""

    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        t.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one failed request must not stop the server
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def _http_403(message: str) -> Exception:
    """The view's refusal of a write as bottle's HTTP 403: optuna-dashboard's API views answer
    it with that status and ``{"reason": message}``, as they answer their own refusals, instead
    of an HTTP 500 and a traceback in the log."""
    from bottle import HTTPError  # type: ignore[import-untyped]

    return HTTPError(403, message)


def make_dashboard_server(url: str, *, host: str = "127.0.0.1",
                          port: int = DEFAULT_PORT) -> tuple[WSGIServer, Any]:
    """A WSGI server running optuna-dashboard on ``url`` (not started), and the storage view.

    ``port=0`` picks a free port (``server.server_port`` tells which).
    """
    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError("optuna-dashboard is not installed; pip install 'moqwk[dashboard]' "
                          "(make venv installs it)") from None
    from moqwk.study.dashboard import open_readonly

    view = open_readonly(url)
    view.refusal = _http_403
    app = optuna_dashboard.wsgi(view)
    try:
        server = make_server(host, port, app, server_class=_ThreadingServer,
                             handler_class=_QuietHandler)
    except OSError as e:
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); pick "
                          "another port (0 picks a free one)") from None
    return server, view


def serve(run_dir: Path, *, storage: str | None = None, host: str = "127.0.0.1",
          port: int = DEFAULT_PORT, out: TextIO | None = None) -> int:
    """Serve until Ctrl-C; prints the URL and the storage (password masked) first."""
    from moqwk.base.artifacts import mask_url
    from moqwk.stages.status import storage_for

    out = out or sys.stdout
    url = storage_for(Path(run_dir), storage)
    server, view = make_dashboard_server(url, host=host, port=port)
    shown_host = f"[{host}]" if ":" in host else host
    names = ", ".join(s.study_name for s in view.get_all_studies())
    print(f"optuna-dashboard on http://{shown_host}:{server.server_port}/dashboard/", file=out)
    print(f"  storage {mask_url(url)}; studies: {names}", file=out)
    print("  constraints, as the dashboard numbers them (feasible when <= 0): "
          + ", ".join(f"{i} = {n}" for i, n in enumerate(view.order)), file=out)
    print("  read-only view; Ctrl-C stops it", file=out)
    if host not in LOCAL_HOSTS:
        print(f"  note: listening on {host}: anyone who can reach it can read the study",
              file=out)
    out.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def run(args: argparse.Namespace) -> int:
    return serve(Path(args.run_dir), storage=args.storage, host=args.host, port=args.port)


def register(add) -> None:
    p = add("dashboard", "start optuna-dashboard on the run's study (read-only, constraints "
                         "shown); needs the 'dashboard' extra", run)
    add_run_dir(p)
    p.add_argument("--storage", help="the study's storage URL (default: the run's own); the "
                                     "printed URL masks its password")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                                                        "127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
