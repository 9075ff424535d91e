"""Shared test helpers: import path, the fake binary, and its wire record."""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

TESTS_DIR = Path(__file__).resolve().parent
SDK_DIR = TESTS_DIR.parent
REPO_ROOT = TESTS_DIR.parents[2]
CONTRACT_PATH = REPO_ROOT / "contract" / "rpc.json"

if str(SDK_DIR) not in sys.path:
    sys.path.insert(0, str(SDK_DIR))

from matchlock import Client, Config  # noqa: E402

# Every fake server of this test process records here; the contract test
# checks all of them.
RECORD_DIR = Path(tempfile.mkdtemp(prefix="matchlock-py-tests-"))
atexit.register(shutil.rmtree, RECORD_DIR, True)
_counter = itertools.count(1)


def fake_binary() -> str:
    """An executable that runs fake_matchlock.py with this interpreter."""
    path = RECORD_DIR / "matchlock"
    if not path.exists():
        path.write_text(
            "#!/bin/sh\n"
            f"exec '{sys.executable}' '{TESTS_DIR / 'fake_matchlock.py'}' \"$@\"\n",
            encoding="utf-8",
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


class Fake:
    """Points the SDK at the fake binary for one test, with its own record."""

    def __init__(self, **env: str) -> None:
        self.record_path = RECORD_DIR / f"record-{next(_counter)}.jsonl"
        self.binary = fake_binary()
        values = {"MATCHLOCK_BIN": self.binary, "FAKE_MATCHLOCK_RECORD": str(self.record_path)}
        values.update({f"FAKE_MATCHLOCK_{k.upper()}": v for k, v in env.items()})
        self._patch = mock.patch.dict(os.environ, values)
        self.clients: list[Client] = []

    def __enter__(self) -> "Fake":
        self._patch.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for c in self.clients:
            try:
                c.close(timeout=0.5)
            except Exception:  # noqa: BLE001
                pass
        self._patch.stop()

    def client(self, start: bool = True) -> Client:
        c = Client(Config(binary_path=self.binary))
        self.clients.append(c)
        if start:
            c.start()
        return c

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.record_path.exists():
            return []
        out = []
        for line in self.record_path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if kind is None or entry["kind"] == kind:
                out.append(entry)
        return out

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        msgs = [r["msg"] for r in self.records("in")]
        return [m for m in msgs if method is None or m.get("method") == method]

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()


def all_recorded_requests() -> list[dict[str, Any]]:
    """Every request any fake server of this process received."""
    out = []
    for path in sorted(RECORD_DIR.glob("record-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry["kind"] == "in":
                out.append(entry["msg"])
    return out


def all_recorded(kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(RECORD_DIR.glob("record-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry["kind"] == kind:
                out.append(entry)
    return out
