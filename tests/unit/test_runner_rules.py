"""The runner's pure decision rules: stopping, exit codes, outcomes, entry-function arguments, shrinking, names."""

import signal

import pytest

from db.job_runs import one_line
from db.loader import LoadPolicy, shrink_refusal
from db.locks import MAX_NAME_LENGTH, lock_name
from run_jobs import exit_code, select_jobs
from runner.attempt import AttemptResult, outcome
from runner.entrypoints import accepted_arguments
from runner.preflight import sources_for
from runner.stopping import StopState
from vocab import DeadlineExceeded, JobError, JobReport, StopRequested

OFFERED = {"env": "E", "engine": "G", "report": "R", "stop": "S"}


def test_a_signal_raises_at_once_outside_bookkeeping_and_only_once():
    state = StopState()
    first, exc = state.on_signal(signal.SIGTERM, "SIGTERM")
    assert first and isinstance(exc, StopRequested) and exc.signum == signal.SIGTERM
    assert state.on_signal(signal.SIGINT, "SIGINT") == (False, None)       # already stopping
    assert state.requested.signal_name == "SIGTERM"


def test_a_signal_during_bookkeeping_waits_for_the_outermost_section():
    state = StopState()
    state.enter_deferred()
    state.enter_deferred()
    assert state.on_signal(signal.SIGTERM, "SIGTERM") == (True, None)
    assert state.leave_deferred() is None
    assert isinstance(state.leave_deferred(), StopRequested)
    assert state.pending is None and state.deferred_depth == 0


def test_a_deadline_fires_once_only_while_armed_and_yields_to_a_stop():
    state = StopState()
    assert state.on_deadline("late") is None                               # not armed
    state.deadline_armed = True
    assert isinstance(state.on_deadline("late"), DeadlineExceeded)
    assert state.on_deadline("late") is None                               # fired already
    state.deadline_armed = True
    state.enter_deferred()
    assert state.on_deadline("late") is None
    state.on_signal(signal.SIGTERM, "SIGTERM")
    assert isinstance(state.leave_deferred(), StopRequested)               # the stop outranks the deadline


def test_a_deadline_that_fired_after_the_job_ended_is_dropped():
    state = StopState(deadline_armed=True)
    state.enter_deferred()
    state.on_deadline("late")
    state.disarm_deadline()
    assert state.leave_deferred() is None


@pytest.mark.parametrize(("error", "expected"), [
    (None, ("succeeded", None)),
    (StopRequested(15, "SIGTERM"), ("interrupted", "stopped by SIGTERM")),
    (DeadlineExceeded("stopped after exceeding JOB_TIMEOUT_MINUTES (1 min)"),
     ("failed", "stopped after exceeding JOB_TIMEOUT_MINUTES (1 min)")),
    (JobError("Canvas down", details=["x"]), ("failed", "Canvas down")),
    (KeyError("id"), ("failed", "crashed: KeyError: 'id'")),
])
def test_outcomes(error, expected):
    assert outcome(error) == expected


@pytest.mark.parametrize(("statuses", "unknown", "code"), [
    (["succeeded", "succeeded"], [], 0), (["succeeded", "failed", "skipped"], [], 1), (["skipped"], [], 3),
    (["succeeded"], ["GRADES"], 1), ([], [], 0)])
def test_exit_codes(statuses, unknown, code):
    assert exit_code([AttemptResult("J", status) for status in statuses], unknown) == code


def test_jobs_are_selected_case_insensitively_and_unknown_ones_set_apart():
    registry = {"MIVIDEO": "x", "COURSE_INVENTORY": "y"}
    assert select_jobs(["mivideo", "Grades", "COURSE_INVENTORY"], registry) == (["MIVIDEO", "COURSE_INVENTORY"],
                                                                                ["GRADES"])


def test_entry_functions_get_the_arguments_they_accept():
    def none():
        return None

    def some(env=None, *, report=None, other=None):
        return None

    def everything(**kwargs):
        return None

    def positional_only(env, /):
        return None

    assert accepted_arguments(none, OFFERED) == {}
    assert accepted_arguments(some, OFFERED) == {"env": "E", "report": "R"}
    assert accepted_arguments(everything, OFFERED) == OFFERED
    assert accepted_arguments(positional_only, OFFERED) == {}


@pytest.mark.parametrize(("current", "new", "policy", "refused"), [
    (0, 0, LoadPolicy(), False), (10, 5, LoadPolicy(), False), (10, 4, LoadPolicy(), True),
    (10, 0, LoadPolicy(min_share=0), True), (10, 1, LoadPolicy(min_share=0), False),
    (10, 0, LoadPolicy(allow_shrink=True), False), (3, 30, LoadPolicy(), False)])
def test_shrink_rule(current, new, policy, refused):
    assert (shrink_refusal("t", current, new, policy) is not None) == refused


def test_lock_names_fit_the_server_limit_and_stay_distinct():
    assert lock_name("course_inventory", "job.MIVIDEO") == "course_inventory.course_inventory.job.MIVIDEO"
    long_a, long_b = lock_name("d" * 64, "job.MIVIDEO"), lock_name("d" * 64, "job.COURSE_INVENTORY")
    assert len(long_a) <= MAX_NAME_LENGTH and long_a != long_b


def test_reasons_are_one_bounded_line():
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 5000)) == 1000 and one_line("x" * 5000).endswith("...")


def test_each_source_is_probed_once_in_job_order():
    assert sources_for(["CANVAS_ZOOM_MEETINGS", "COURSE_INVENTORY", "UNKNOWN"]) == [
        "Canvas token", "Zoom base URL", "gateway token", "UDW"]


class Stats:
    def __init__(self, requests, retries, throttled):
        self.total_requests, self.retries, self.throttled = requests, retries, throttled

    def snapshot(self):
        return self


def test_the_report_adds_rows_and_reads_tracked_clients_when_asked():
    report = JobReport()
    stats = Stats(1, 0, 0)
    report.track(stats)
    report.add_rows({"a": 2})
    report.add_rows({"a": 3, "b": 1})
    report.add_requests(4, retries=1)
    stats.total_requests, stats.throttled = 10, 2                         # read at the end, not when tracked
    totals = report.request_totals()
    assert report.rows_loaded == {"a": 5, "b": 1}
    assert (totals.requests, totals.retries, totals.throttled) == (14, 1, 2)
