"""`course_inventory.early_answers`: an early answer is used exactly when the listing confirms its course, once."""

from __future__ import annotations

import pytest

from course_inventory.early_answers import NOT_ASKED, PENDING, Answer, EarlyAnswers
from vocab import FatalSourceError


def test_an_answer_in_before_the_listing_confirms_it_is_handed_over_once():
    early: EarlyAnswers[str] = EarlyAnswers([1])
    assert early.should_ask(1)
    assert early.deliver(1, Answer("rows of 1")) is False          # not confirmed yet: kept
    claim = early.confirm(1)
    assert isinstance(claim, Answer) and claim.unwrap() == "rows of 1"
    assert early.confirm(1) is NOT_ASKED                             # used once; a second claim asks anew
    assert (early.used, early.dropped) == (1, 0)


def test_a_course_confirmed_while_its_answer_is_on_the_way_gets_it_from_the_request():
    early: EarlyAnswers[str] = EarlyAnswers([1])
    assert early.should_ask(1)
    assert early.confirm(1) is PENDING
    assert early.deliver(1, Answer("rows of 1")) is True              # the caller uses it now
    early.complete_listing()
    assert (early.used, early.dropped) == (1, 0)


def test_a_course_confirmed_before_its_early_request_started_is_asked_in_order_and_never_early():
    early: EarlyAnswers[str] = EarlyAnswers([1])
    assert early.confirm(1) is NOT_ASKED
    assert early.should_ask(1) is False
    assert early.withdrawn == 1 and early.used == 0


def test_answers_of_courses_the_listing_does_not_return_are_dropped_errors_included():
    early: EarlyAnswers[str] = EarlyAnswers([1, 2, 3, 4])
    for key in (1, 2, 3):
        assert early.should_ask(key)
    early.deliver(1, Answer("rows of 1"))
    early.deliver(2, Answer(error=FatalSourceError("course 2 is gone", source="canvas", status=403)))
    early.complete_listing()
    early.deliver(3, Answer("rows of 3"))                            # ended after the listing: dropped too
    assert early.should_ask(4) is False                              # not started yet: never asked
    assert (early.used, early.dropped, early.skipped) == (0, 3, 1)
    assert early.confirm(1) is NOT_ASKED


def test_the_error_of_a_confirmed_course_is_raised_as_the_request_would_have_raised_it():
    early: EarlyAnswers[str] = EarlyAnswers([1])
    early.should_ask(1)
    error = FatalSourceError("no permission", source="canvas", status=403)
    early.deliver(1, Answer(error=error))
    claim = early.confirm(1)
    assert isinstance(claim, Answer)
    with pytest.raises(FatalSourceError) as raised:
        claim.unwrap()
    assert raised.value is error


def test_keys_never_asked_early_are_not_asked_claims():
    early: EarlyAnswers[str] = EarlyAnswers([])
    assert early.confirm(7) is NOT_ASKED
