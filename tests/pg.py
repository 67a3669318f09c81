"""A real PostgreSQL for the SQL-source tests: REPORTGEN_TEST_PG_URL (default
postgresql://reportgen:${REPORTGEN_TEST_PG_PASSWORD}@127.0.0.1:5432/reportgen_test, the
password from the environment, default "rg-Secret-42"; .ci/run creates that role and
database). The pg_table fixture (registered in conftest.py) is skipped when no server answers,
except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest

from .customer_tables import mall_table

PG_URL = os.environ.get("REPORTGEN_TEST_PG_URL",
                        "postgresql://reportgen:${REPORTGEN_TEST_PG_PASSWORD}@127.0.0.1:5432/"
                        "reportgen_test")
PG_PASSWORD = os.environ.get("REPORTGEN_TEST_PG_PASSWORD", "rg-Secret-42")


def pg_engine(driver: str = ""):
    """An engine on the test server (``driver``: e.g. "+psycopg" after "postgresql"); skipped
    only when no server runs outside CI, a failure in CI."""
    sa = pytest.importorskip("sqlalchemy")
    os.environ.setdefault("REPORTGEN_TEST_PG_PASSWORD", PG_PASSWORD)
    from reportgen.load import _expand_env

    url, _ = _expand_env(PG_URL, "postgres")
    url = url.replace("postgresql://", f"postgresql{driver}://", 1)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable in CI ({exc.__class__.__name__}); "
                        ".ci/run must install and start it")
        pytest.skip(f"no PostgreSQL server reachable ({exc.__class__.__name__})")
    return engine


@pytest.fixture(scope="module")
def pg_table():
    """A customers table in a real PostgreSQL; skipped only when no server runs outside CI."""
    engine = pg_engine()
    name = f"customers_{uuid.uuid4().hex[:8]}"
    frame = mall_table()
    frame["joined"] = pd.date_range("2019-01-01", periods=len(frame), freq="D").date
    frame.to_sql(name, engine, index=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'ALTER TABLE "{name}" ADD PRIMARY KEY ("CustomerID")')
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
    engine.dispose()
