"""Jobs in SQLite under the state folder: what survives a killed daemon.

A job row holds its spec (with the effective config, so a resumed job uses the same seed
and settings), its state and counters. Each finished window is one row in ``windows``,
written in the same transaction as the job's ``frames_done``, after the window's frames
were staged on disk: a window is either recorded with all its frames, or re-run, so a
resumed job neither loses nor duplicates frames.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from c2r.v1 import coarse2real_pb2 as pb

from .settings import private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, spec BLOB NOT NULL, state INTEGER NOT NULL, frames_total INTEGER NOT NULL DEFAULT 0,
    frames_done INTEGER NOT NULL DEFAULT 0, output TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
    job_id TEXT NOT NULL, window INTEGER NOT NULL, first_frame INTEGER NOT NULL, end_frame INTEGER NOT NULL,
    finished REAL NOT NULL, PRIMARY KEY (job_id, window)
);
"""
UNFINISHED = (pb.PENDING, pb.RUNNING)
TERMINAL = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)


class JobStore:
    def __init__(self, path: Path):
        self.db = sqlite3.connect(private_file(path), isolation_level=None)  # autocommit; explicit transactions below
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def create(self, job_id: str, spec: pb.JobSpec, output: str) -> pb.Job:
        now = time.time()
        self.db.execute(
            "INSERT INTO jobs (id, spec, state, output, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, spec.SerializeToString(), pb.PENDING, output, now, now),
        )
        return self.get(job_id)

    def get(self, job_id: str) -> pb.Job | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else self._job(row)

    def list(self) -> list[pb.Job]:
        return [self._job(r) for r in self.db.execute("SELECT * FROM jobs ORDER BY created")]

    def unfinished(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM jobs WHERE state IN (?, ?) ORDER BY created", UNFINISHED)]

    def update(self, job_id: str, **fields) -> pb.Job:
        names = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE jobs SET {names}, updated = ? WHERE id = ?", (*fields.values(), time.time(), job_id))
        return self.get(job_id)

    def window_done(self, job_id: str, window: int, first_frame: int, end_frame: int) -> pb.Job:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?, ?)", (job_id, window, first_frame, end_frame, time.time()))
            self.db.execute("UPDATE jobs SET frames_done = ?, updated = ? WHERE id = ?", (end_frame, time.time(), job_id))
        return self.get(job_id)

    def windows(self, job_id: str) -> list[tuple[int, int, int]]:
        """(window, first_frame, end_frame) of every finished window, in order."""
        return list(self.db.execute("SELECT window, first_frame, end_frame FROM windows WHERE job_id = ? ORDER BY window", (job_id,)))

    @staticmethod
    def _job(row) -> pb.Job:
        job_id, spec, state, total, done, output, error, created, updated = row
        return pb.Job(id=job_id, state=state, frames_total=total, frames_done=done, output=output, error=error,
                      created=created, updated=updated, spec=pb.JobSpec.FromString(spec))
