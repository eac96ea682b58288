"""A database that accepts connections and then stops answering fails the statement instead of hanging the run."""

import time

import pandas as pd
import pytest
import sqlalchemy as sa

from db.engine import create_inventory_engine
from db.loader import replace_tables
from tests.helpers.tcp_proxy import StallingProxy
from vocab import LoadError


def sections(count):
    return pd.DataFrame({"canvas_id": range(1, count + 1), "sis_id": None, "name": "Section name"})


@pytest.fixture
def proxy_params(migrated_db_params):
    proxies = []

    def make(**options):
        proxy = StallingProxy((migrated_db_params["host"], int(migrated_db_params["port"])), **options).start()
        proxies.append(proxy)
        return {**migrated_db_params, "host": "127.0.0.1", "port": str(proxy.port), "timeout_seconds": 2}, proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.mark.parametrize("rows", [3_000, 30_000], ids=["inserts", "load-data-local"])
def test_a_load_that_stalls_midway_fails_and_rolls_back(proxy_params, migrated_engine, rows):
    replace_tables(migrated_engine, {"course_section": sections(10)})
    params, proxy = proxy_params()
    engine = create_inventory_engine(params)
    with engine.connect() as conn:                  # connected and answering
        conn.exec_driver_sql("SELECT 1")
    proxy.stall_after = proxy.forwarded + 60_000    # somewhere inside the rows sent
    started = time.monotonic()
    with pytest.raises(LoadError) as info:
        replace_tables(engine, {"course_section": sections(rows)})
    assert time.monotonic() - started < 12          # the 2 s timeout, not forever
    assert proxy.stalled.is_set()
    assert "rolled back" in str(info.value) and "\n" not in str(info.value)
    engine.dispose()
    proxy.close()                                   # the server sees the connection gone and rolls back
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with migrated_engine.connect() as conn:
            names = conn.execute(sa.text("SELECT canvas_id FROM course_section ORDER BY canvas_id")).scalars().all()
        if names == list(range(1, 11)):
            break
        time.sleep(0.2)
    assert names == list(range(1, 11))
