"""The results table of a plan: every finished point, on disk, keyed by its full parameters and seed.

One SQLite file (``points.sqlite``) in the plan's output folder. A point is committed the moment it
finishes, in its own transaction, so a plan that is interrupted (Ctrl-C, a killed process, a lost
machine) keeps every point it finished, and a plan started again over the same folder reads them
instead of simulating them again. A key is the SHA-256 of the point's canonical parameters: the
whole scenario of the point (configuration and load applied), the seed, replications and length,
the content hashes of the profile bundles it reads and the latsim version, so a changed input is a
new point and never a stale answer. The file is checked to hold that one table and nothing else (no
view, trigger or other table), and every stored result is checked before it is used.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from simulator.files import OutputPathError
from simulator.planning.documents import check_point_result, parse_json

STORE_FILE = "points.sqlite"
TABLE = "CREATE TABLE points (key TEXT PRIMARY KEY, parameters TEXT NOT NULL, result TEXT NOT NULL, seconds REAL NOT NULL)"
SCHEMA = [("table", "points", TABLE), ("index", "sqlite_autoindex_points_1", None)]  # everything the file holds
MAX_RESULT_CHARS = 50_000_000  # of one stored result (a point's detail is well under a megabyte)
MAX_POINT_SECONDS = 1e9


def point_key(parameters: dict[str, Any]) -> str:
    """The SHA-256 of a point's parameters as canonical JSON."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultStore:
    """Finished points of a plan: ``get`` a stored result by key, ``put`` one as soon as it finishes.

    ``metrics`` are the ``(class, metric)`` pairs the plan's SLOs read from a result: a stored result
    without them (or with anything else the plan reads missing, mistyped or not finite) is refused.
    """

    def __init__(self, folder: Path, metrics: list[tuple[str, str]]) -> None:
        self.path = Path(folder) / STORE_FILE
        self.metrics = metrics
        try:
            self._db = sqlite3.connect(self.path)
            found = self._db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type DESC, name").fetchall()
            if not found:
                self._db.execute(TABLE)
                self._db.commit()
            elif found != SCHEMA:
                self._db.close()
                names = ", ".join(f"{kind} {name!r:.60}" for kind, name, _ in found[:10])
                raise self._refused(f"it holds {names}, not just latsim's table of points")
        except sqlite3.DatabaseError as error:
            raise self._refused(str(error)) from None

    def _refused(self, why: str) -> OutputPathError:
        return OutputPathError(f"{self.path}: not a latsim results table ({why}); use another --out folder, or delete the file")

    def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        """A stored point's result and the wall seconds its simulation took (None: not stored)."""
        try:
            row = self._db.execute("SELECT result, seconds FROM points WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as error:
            raise self._refused(str(error)) from None
        if row is None:
            return None
        text, seconds = row
        where = f"the point {key[:12]}"
        if not isinstance(seconds, float) or not 0 <= seconds <= MAX_POINT_SECONDS:
            raise self._refused(f"{where}: seconds is {seconds!r:.40}, not a number of seconds from 0 to {MAX_POINT_SECONDS:g}")
        if not isinstance(text, str) or len(text) > MAX_RESULT_CHARS:
            raise self._refused(f"{where}: its result is no text of at most {MAX_RESULT_CHARS:,} characters")
        try:
            result = parse_json(text, allow_nan=True)
        except ValueError as error:
            raise self._refused(f"{where}: its result is not JSON ({str(error)[:100]})") from None
        problem = check_point_result(result, self.metrics)
        if problem is not None:
            raise self._refused(f"{where}: its result: {problem}")
        return result, seconds

    def put(self, key: str, parameters: dict[str, Any], result: dict[str, Any], seconds: float) -> None:
        """Store one finished point and commit at once (an interrupted plan keeps it)."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?)",
                (key, json.dumps(parameters, sort_keys=True, default=str), json.dumps(result), seconds),
            )
            self._db.commit()
        except sqlite3.DatabaseError as error:
            raise self._refused(str(error)) from None

    def close(self) -> None:
        self._db.close()
