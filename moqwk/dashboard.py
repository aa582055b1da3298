"""``moqwk dashboard``: optuna-dashboard on a run's study, with constraints and feasibility shown.

optuna-dashboard (0.21) shows a trial's constraints, and greys out infeasible trials, from the
trial system attribute ``constraints``: a list of floats (``_serializer.serialize_frozen_trial``
reads ``trial.system_attrs.get("constraints", [])``). Optuna 5's ``Trial.set_constraint(name,
value)`` stores each constraint under its own key, ``constraints:<name>``, so the dashboard saw
no constraint on any moqwk trial.

The fix lives here, on the way to the dashboard, not in the study: :class:`DashboardStorage`
wraps the run's storage and hands the dashboard each trial with the old-style list added, built
from Optuna's public ``FrozenTrial.constraints``. Writing that list into the study instead was
rejected: Optuna 5 reads both formats and merges them, so every trial's ``constraints`` would then
hold each value twice (``{"0": .., "1": .., "low_tail_guardrail": .., ...}``) for Optuna, the
samplers and moqwk's own artifacts; and finished trials cannot be updated, so existing runs would
stay blank. Only public interfaces are used (``BaseStorage``, ``FrozenTrial``).

The view also shows each constraint by name as a user attribute (``constraint:<name>``, and
``constraint:feasible``), since the dashboard's trial page lists no constraint value itself.
The view is read-only: the dashboard's buttons that write (notes, rename, delete study, tell)
are refused, so looking at a run cannot change it.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from moqwk import artifacts
from moqwk.errors import ConfigError, RunDirError, StorageError

#: The trial system attribute optuna-dashboard reads constraints from (a list of floats).
DASHBOARD_CONSTRAINTS_KEY = "constraints"
#: Prefix of the user attributes the view adds: one per constraint, and ``constraint:feasible``.
USER_ATTR_PREFIX = "constraint:"
STUDY_RECORD = "artifacts/optuna_study.json"
DEFAULT_PORT = 8080


def constraint_list(constraints: Mapping[str, float], order: Sequence[str] = ()) -> list[float]:
    """Named constraint values as the list optuna-dashboard reads: names in ``order`` first,
    then any others by name (so index i means the same constraint on every trial)."""
    names = [n for n in order if n in constraints]
    names += sorted(n for n in constraints if n not in order)
    return [float(constraints[n]) for n in names]


def constraint_names(constraints: Iterable[str], order: Sequence[str] = ()) -> list[str]:
    """The names behind :func:`constraint_list`'s indices, in the same order."""
    present = set(constraints)
    return [n for n in order if n in present] + sorted(n for n in present if n not in order)


class _ReadOnly(PermissionError):
    """A write the dashboard asked for; optuna-dashboard answers it with an error response."""


def _make_storage_class() -> type:
    """:class:`DashboardStorage`, built lazily so importing this module needs no Optuna."""
    import optuna
    from optuna.trial import FrozenTrial

    def refuse(name: str) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise _ReadOnly(f"moqwk dashboard is read-only: {name} refused (the study is a run's "
                            "record; use optuna-dashboard directly to edit it)")
        method.__name__ = name
        return method

    class DashboardStorage(optuna.storages.BaseStorage):
        """A read-only view of ``inner`` whose trials carry the dashboard's constraint list."""

        def __init__(self, inner: optuna.storages.BaseStorage, order: Sequence[str] = ()):
            self.inner = inner
            self.order = tuple(order)

        def with_list(self, t: FrozenTrial) -> FrozenTrial:
            named = t.constraints
            if not named:
                return t
            out = copy.copy(t)
            if DASHBOARD_CONSTRAINTS_KEY not in t.system_attrs:
                out.system_attrs = {**t.system_attrs,
                                    DASHBOARD_CONSTRAINTS_KEY: constraint_list(named, self.order)}
            # 0.21 uses the list for feasibility (infeasible trials grey in its plots) but shows
            # no constraint value on a trial's page; as user attributes, by name, the values
            # appear there and as sortable columns of its trial table.
            out.user_attrs = {**t.user_attrs,
                              **{f"{USER_ATTR_PREFIX}{n}": float(v) for n, v in named.items()},
                              f"{USER_ATTR_PREFIX}feasible": all(v <= 0 for v in named.values())}
            return out

        # Reads: trials get the list; everything else is passed through.
        def get_trial(self, trial_id: int) -> FrozenTrial:
            return self.with_list(self.inner.get_trial(trial_id))

        def get_all_trials(self, study_id: int, deepcopy: bool = True,
                           states: Container[optuna.trial.TrialState] | None = None,
                           ) -> list[FrozenTrial]:
            return [self.with_list(t) for t in
                    self.inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)]

        def get_all_studies(self) -> list[Any]:
            return self.inner.get_all_studies()

        def get_study_directions(self, study_id: int) -> list[Any]:
            return self.inner.get_study_directions(study_id)

        def get_study_id_from_name(self, study_name: str) -> int:
            return self.inner.get_study_id_from_name(study_name)

        def get_study_name_from_id(self, study_id: int) -> str:
            return self.inner.get_study_name_from_id(study_id)

        def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
            return self.inner.get_study_system_attrs(study_id)

        def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
            return self.inner.get_study_user_attrs(study_id)

        def get_trial_id_from_study_id_trial_number(self, study_id: int,
                                                     trial_number: int) -> int:
            return self.inner.get_trial_id_from_study_id_trial_number(study_id, trial_number)

        def get_n_trials(self, study_id: int, state: Any = None) -> int:
            return self.inner.get_n_trials(study_id, state)

        # Writes: refused.
        create_new_study = refuse("create_new_study")
        delete_study = refuse("delete_study")
        create_new_trial = refuse("create_new_trial")
        set_study_system_attr = refuse("set_study_system_attr")
        set_study_user_attr = refuse("set_study_user_attr")
        set_trial_param = refuse("set_trial_param")
        set_trial_state_values = refuse("set_trial_state_values")
        set_trial_intermediate_value = refuse("set_trial_intermediate_value")
        set_trial_user_attr = refuse("set_trial_user_attr")
        set_trial_system_attr = refuse("set_trial_system_attr")

    return DashboardStorage


def dashboard_storage(inner: Any, order: Sequence[str] = ()) -> Any:
    """``inner`` (an Optuna storage) as the dashboard should see it: read-only, constraint lists
    added. See the module docstring for why."""
    return _make_storage_class()(inner, order)


def storage_url(run_dir: Path, storage: str | None = None) -> str:
    """The run's storage: ``storage`` if given, else ``RUN_DIR/study.db``, else the URL recorded
    in ``artifacts/optuna_study.json`` when it holds no masked password."""
    from moqwk.study import STUDY_DB, default_storage_url

    if storage:
        return storage
    run_dir = Path(run_dir)
    if (run_dir / STUDY_DB).exists():
        return default_storage_url(run_dir)
    record = run_dir / STUDY_RECORD
    recorded = artifacts.read_json(record).get("storage") if record.exists() else None
    if recorded and "***" not in recorded:
        return str(recorded)
    if recorded:
        raise RunDirError(f"{run_dir} keeps its study in {recorded} (from {STUDY_RECORD}); pass "
                          "--storage with the full URL, password included")
    raise RunDirError(f"{run_dir} has no {STUDY_DB} and no {STUDY_RECORD}; run `moqwk search` "
                      "first or pass --storage")


def open_readonly(url: str) -> Any:
    """An RDB storage for reading an existing study (no table is created)."""
    import optuna

    masked = artifacts.mask_url(url)
    if "://" not in url:
        raise ConfigError(f"--storage {masked!r} is not a URL; use sqlite:///PATH or "
                          "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB")
    try:
        st = optuna.storages.RDBStorage(url, skip_table_creation=True)
        studies = st.get_all_studies()
    except Exception as e:  # noqa: BLE001 - SQLAlchemy and driver errors vary widely
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot read storage {masked}: {artifacts.mask_secrets(reason)}; "
                           "check the URL, that the server is up and the credentials") from None
    if not studies:
        raise RunDirError(f"no study in {masked}; run `moqwk search` first")
    return st


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass


class _ThreadingServer(WSGIServer):
    """One thread per request: the dashboard's page fires several API calls at once."""

    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        import threading

        t = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        t.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one failed request must not stop the server
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def make_dashboard_server(url: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                          order: Sequence[str] = ()) -> tuple[WSGIServer, Any]:
    """A WSGI server running optuna-dashboard on ``url`` (not started), and the storage view.

    ``port=0`` picks a free port (``server.server_port`` tells which).
    """
    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError("optuna-dashboard is not installed; pip install 'moqwk[dashboard]' "
                          "(make venv installs it)") from None
    view = dashboard_storage(open_readonly(url), order)
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
    """``moqwk dashboard``: serve until Ctrl-C; prints the URL (password masked) first."""
    out = out or sys.stdout
    run_dir = Path(run_dir)
    url = storage_url(run_dir, storage)
    record = run_dir / STUDY_RECORD
    order = (artifacts.read_json(record).get("constraints") or []) if record.exists() else []
    server, view = make_dashboard_server(url, host=host, port=port, order=order)
    shown_host = f"[{host}]" if ":" in host else host
    names = ", ".join(s.study_name for s in view.get_all_studies())
    print(f"optuna-dashboard on http://{shown_host}:{server.server_port}/dashboard/", file=out)
    print(f"  storage {artifacts.mask_url(url)}; studies: {names}", file=out)
    if order:
        print("  constraints, as the dashboard numbers them (feasible when <= 0): "
              + ", ".join(f"{i} = {n}" for i, n in enumerate(order)), file=out)
    print("  read-only view; Ctrl-C stops it", file=out)
    if host not in ("127.0.0.1", "localhost", "::1"):
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
