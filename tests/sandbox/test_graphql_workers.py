"""GraphQL queries answered by forked copies of the endpoint (sandbox.graphql_workers): the same bytes as the
endpoint itself, a dead copy costs one answer and never a hang, and the copies end with the sandbox."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from course_inventory.gql_queries import enrollments_query, enrollments_variables
from sandbox.__main__ import build_parser, sandbox_options
from sandbox.canvas_graphql import GraphQLEndpoint
from sandbox.generator import generate_university
from sandbox.graphql_workers import GraphQLWorkerError, GraphQLWorkers
from sandbox.httpserver import CostModel
from sandbox.runner import Sandbox, SandboxOptions
from sandbox.throttle import ThrottleOptions

TOKEN = "canvas-sandbox-token"


@pytest.fixture(scope="module")
def university():
    return generate_university("small", seed=5)


def twenty_courses(university) -> tuple[str, dict]:
    pages = [(course.id, None) for course in university.courses[:20]]
    return enrollments_query(len(pages)), enrollments_variables(pages)


def post(sandbox: Sandbox, query: str, variables: dict | None) -> requests.Response:
    return requests.post(f"{sandbox.urls()['canvas']}/api/graphql", json={"query": query, "variables": variables},
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def quiet_options(**changes) -> SandboxOptions:
    return SandboxOptions(services=(), cost=CostModel(overhead_ms=0, per_record_ms=0),
                          throttle=ThrottleOptions(enabled=False), **changes)


def test_workers_answer_byte_for_byte_as_the_endpoint(university):
    query, variables = twenty_courses(university)
    endpoint = GraphQLEndpoint(university, [TOKEN])
    workers = GraphQLWorkers(GraphQLEndpoint(university, [TOKEN]), 2, journal_parts=True)
    try:
        for text, values in ((query, variables), ("{ course(id: 1) { nope } }", None), ("{", None)):
            mine, theirs = endpoint.run(text, values, None), workers.run(text, values, None)
            assert (theirs.status, theirs.body, theirs.headers, theirs.records) == \
                   (mine.status, mine.body, mine.headers, mine.records)
            assert (theirs.parts and theirs.parts()) == (mine.parts and mine.parts())
        assert b'"enrollmentsConnection"' in workers.run(query, variables, None).body
    finally:
        workers.close()


def test_a_dead_worker_costs_one_answer_and_the_rest_serve_on(university):
    query, variables = twenty_courses(university)
    expected = GraphQLEndpoint(university, [TOKEN]).run(query, variables, None).body
    with Sandbox(university, quiet_options(graphql_processes=1)) as sandbox:
        workers = sandbox.canvas.graphql.workers
        assert post(sandbox, query, variables).content == expected
        (pid,) = workers.pids
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        lost = post(sandbox, query, variables)
        assert lost.status_code == 500 and sandbox.servers["canvas"].stats.snapshot()["handler_errors"] == 1
        # None is left: the endpoint answers itself rather than leaving the request waiting.
        assert post(sandbox, query, variables).content == expected


def test_the_workers_end_with_the_sandbox(university):
    with Sandbox(university, quiet_options(graphql_processes=2)) as sandbox:
        pids = sandbox.canvas.graphql.workers.pids
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
    assert not any(alive(pid) for pid in pids)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_roster_churn_needs_the_in_process_endpoint(university):
    with pytest.raises(ValueError, match="roster churn"):
        GraphQLEndpoint(university, [TOKEN], roster_churn=0.1).use_workers(2, journal_parts=False)
    args = build_parser().parse_args(["serve", "--roster-churn", "0.1", "--graphql-processes", "2"])
    with pytest.raises(ValueError, match="--graphql-processes"):
        sandbox_options(args, env_file=None, udw_dbname=None, inventory_dbname=None)
    churned = build_parser().parse_args(["serve", "--roster-churn", "0.1"])
    plain = build_parser().parse_args(["serve"])
    assert sandbox_options(churned, env_file=None, udw_dbname=None, inventory_dbname=None).graphql_processes == 0
    assert sandbox_options(plain, env_file=None, udw_dbname=None, inventory_dbname=None).graphql_processes == 2


def test_a_failing_query_in_a_worker_is_reported_not_hidden(university, monkeypatch):
    endpoint = GraphQLEndpoint(university, [TOKEN])
    monkeypatch.setattr(endpoint, "run", lambda *args: 1 / 0)       # forked into the copy
    workers = GraphQLWorkers(endpoint, 1)
    try:
        with pytest.raises(GraphQLWorkerError, match="ZeroDivisionError"):
            workers.run("{ __typename }", None, None)
    finally:
        workers.close()
