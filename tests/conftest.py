"""Shared fixtures."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from .pg import pg_table  # noqa: F401  (the PostgreSQL fixture, for every test module)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs started by the tests (the CLI in subprocesses too) keep their Vega bundle cache in
    a temporary folder, not in the user's ~/.cache."""
    before = os.environ.get("REPORTGEN_CACHE_DIR")
    os.environ["REPORTGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("REPORTGEN_CACHE_DIR", None)
    else:
        os.environ["REPORTGEN_CACHE_DIR"] = before


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything opens a network connection (rendering must stay offline)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
