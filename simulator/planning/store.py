"""The results table of a plan: every finished point, on disk, keyed by its full parameters and seed.

One SQLite file (``points.sqlite``) in the plan's output folder. A point is committed the moment it
finishes, in its own transaction, so a plan that is interrupted (Ctrl-C, a killed process, a lost
machine) keeps every point it finished, and a plan started again over the same folder reads them
instead of simulating them again. A key is the SHA-256 of the point's canonical parameters: the
whole scenario of the point (configuration and load applied), the seed, replications and length,
the content hashes of the profile bundles it reads and the latsim version, so a changed input is a
new point and never a stale answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from simulator.files import OutputPathError

STORE_FILE = "points.sqlite"


def point_key(parameters: dict[str, Any]) -> str:
    """The SHA-256 of a point's parameters as canonical JSON."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultStore:
    """Finished points of a plan: ``get`` a stored result by key, ``put`` one as soon as it finishes."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / STORE_FILE
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS points (key TEXT PRIMARY KEY, parameters TEXT NOT NULL, "
                "result TEXT NOT NULL, seconds REAL NOT NULL)"
            )
            self._db.commit()
        except sqlite3.DatabaseError as error:
            raise OutputPathError(f"{self.path}: not a latsim results table ({error}); use another --out folder") from None

    def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        """A stored point's result and the wall seconds its simulation took (None: not stored)."""
        row = self._db.execute("SELECT result, seconds FROM points WHERE key = ?", (key,)).fetchone()
        return None if row is None else (json.loads(row[0]), float(row[1]))

    def put(self, key: str, parameters: dict[str, Any], result: dict[str, Any], seconds: float) -> None:
        """Store one finished point and commit at once (an interrupted plan keeps it)."""
        self._db.execute(
            "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?)",
            (key, json.dumps(parameters, sort_keys=True, default=str), json.dumps(result), seconds),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()
