"""Whether the monitoring database can be used now: checked in the background, consulted before every use.

The service scores without its database. A process that starts while the database is down (PostgreSQL not
listening, a SQLite file in a missing directory) is ready at once and says `database: down`; a background
thread checks every `COMMITRISK_DATABASE_CHECK_SECONDS`, migrates the schema the first time the database
answers, and flips the state back — no restart. While the database is down, the routes that need it answer
503 `DatabaseUnavailable` at once (`use`), and the prediction log holds its rows (app/monitoring/writer.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from app.errors import DatabaseUnavailable
from app.monitoring import database
from app.monitoring.store import Store

log = logging.getLogger("commitrisk.database")

T = TypeVar("T")
MESSAGE = "the monitoring database is unavailable; predictions are still answered and the service reconnects by itself"


class Availability:
    """Up or down, with the reason; `check()` connects (and migrates once), `use()` gates every database call."""

    def __init__(self, store: Store, check_seconds: float, on_change: Callable[[bool], object] | None = None) -> None:
        self.store = store
        self.check_seconds = check_seconds
        self.reason = "not checked yet"
        self._on_change = on_change
        self._up = threading.Event()
        self._down_logged = False
        self._migrated = False
        self._migrating = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def up(self) -> bool:
        """True while the database answered its last use or check."""
        return self._up.is_set()

    def state(self) -> str:
        """`up` or `down` (readiness details)."""
        return "up" if self.up else "down"

    def check(self) -> bool:
        """Connect, migrating the schema the first time; update the state and return it. Never raises."""
        try:
            with self._migrating:
                if self._migrated:
                    self.store.ping()
                else:
                    self.store.migrate()
                    self._migrated = True
        except Exception as exc:  # whatever stops the check means the database cannot be used
            self.mark_down(exc)
            return False
        self._mark_up()
        return True

    def mark_down(self, exc: BaseException) -> None:
        """Record that the database failed (logged once per outage, with the driver's reason)."""
        self.reason = database.describe(exc)
        self._up.clear()
        if not self._down_logged:
            self._down_logged = True
            log.warning("monitoring database unavailable: %s", self.reason)
        self._publish()

    def _mark_up(self) -> None:
        self.reason = ""
        self._up.set()
        if self._down_logged:
            self._down_logged = False
            log.warning("monitoring database reachable again")
        self._publish()

    def _publish(self) -> None:
        # Every check republishes (not only transitions): a race between two threads cannot leave a stale gauge.
        if self._on_change is not None:
            self._on_change(self._up.is_set())

    def wait(self, timeout: float) -> bool:
        """Block until the database is up or `timeout` seconds passed; the state then."""
        return self._up.wait(timeout)

    def use(self, operation: Callable[[Store], T]) -> T:
        """Run `operation` on the store; DatabaseUnavailable (503) at once while down, or when it fails for an
        outage (which also marks the database down). Errors of other kinds propagate unchanged."""
        if not self._up.is_set() or not self._migrated:
            raise DatabaseUnavailable(MESSAGE)
        try:
            return operation(self.store)
        except Exception as exc:
            if not database.is_outage(exc):
                raise
            self.mark_down(exc)
            raise DatabaseUnavailable(MESSAGE) from None

    def start(self) -> None:
        """Start the background check (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="commitrisk-database", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background check (a check in progress ends within the connect timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.check_seconds):
            self.check()
