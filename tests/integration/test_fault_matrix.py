"""COURSE_INVENTORY under everything at once, three seeds: a mid-run outage of Canvas and the gateway together,
independent faults, 403 and 429 throttling, and rosters whose offset pages shift while they are read. The tables
must equal the expected inventory row for row, as after a quiet run.

Retries back off at most 1 s here (the defaults cap at 30 s) so the suite stays short; the time budget is the
default, so the outage is ridden out by time, not by a count of attempts.
"""

from __future__ import annotations

import pytest

from clients.canvas import CanvasClient
from clients.http import Timeouts
from clients.retry import RetryPolicy
from course_inventory.inventory import TABLES, run_course_inventory
from environ import with_defaults
from sandbox.expected import TABLE_COLUMNS, expected_inventory, rows_as_sorted_tuples
from sandbox.faults import FaultOptions
from sandbox.generator import generate_university
from sandbox.httpserver import CostModel, ServerOptions
from sandbox.outages import OutageOptions
from sandbox.throttle import ThrottleOptions
from source_settings import canvas_settings
from tests.helpers.canvas_sandbox import CANVAS_TOKEN, canvas_sandbox, fill_bucket
from tests.integration.test_course_inventory import loaded

pytestmark = pytest.mark.integration

POLICY = RetryPolicy(max_attempts=3, backoff_initial=0.05, backoff_max=1.0, throttle_initial=0.05, throttle_max=1.0)


def graphql_endpoint(box):
    return next(r.handler for r in box.canvas.app.routes if r.pattern == "/api/graphql").__self__


@pytest.mark.parametrize(("seed", "outage_seconds", "throttle_status"), [(1, 30.0, 429), (2, 4.0, 403),
                                                                         (3, 4.0, 429)])
def test_outage_faults_throttling_and_shifting_pages_give_the_expected_rows(migrated_engine, migrated_db_params,
                                                                            seed, outage_seconds, throttle_status):
    university = generate_university("small", seed=seed)
    terms = sorted(t.id for t in university.terms)
    options = ServerOptions(
        seed=seed, latency_ms=2, cost=CostModel(overhead_ms=20),
        faults=FaultOptions.uniform(0.04, slow=0.005, slow_seconds=2),
        # A small bucket, found full (below): at a leak of 5 a second the job's first requests meet 2 s of refusals.
        throttle=ThrottleOptions(enabled=True, status=throttle_status, hwm=15.0, up_front=5.0, maximum=20.0,
                                 leak=5.0),
        outage=OutageOptions(after_requests=60, seconds=outage_seconds))
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms, options=options,
                        roster_churn=0.15) as box:
        box.gateway.share_outages(box.canvas.outages)          # both hosts go down together, mid-run
        fill_bucket(box.canvas, CANVAS_TOKEN)
        settings = canvas_settings(with_defaults(box.env), timeouts=Timeouts(connect=2, read=1.0))
        with CanvasClient(settings, policy=POLICY) as canvas:
            run_course_inventory(box.env, engine=migrated_engine, canvas=canvas)
            stats = canvas.stats.snapshot()
        canvas_stats, gateway_stats = box.canvas.stats.snapshot(), box.gateway.stats.snapshot()
        moves = graphql_endpoint(box).roster.moves
    expected = expected_inventory(university, terms)
    for table in TABLES:
        assert loaded(migrated_engine, table) == rows_as_sorted_tuples(expected[table], TABLE_COLUMNS[table]), table
    # The run really went through each of them.
    assert canvas_stats["outage_failures"] + gateway_stats["outage_failures"] > 10
    assert sum(canvas_stats["faults"].values()) > 0 and stats.throttled > 0 and moves > 0
