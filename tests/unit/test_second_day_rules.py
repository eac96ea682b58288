"""The pure rules of second-day runs: which stored published dates a course keeps, which accounts are fetched alone."""

from __future__ import annotations

from datetime import datetime

import pytest

from course_inventory.account_book import AccountBook
from course_inventory.published_dates import StoredCourse, reusable_dates, reusable_published_at

DATE = datetime(2025, 9, 2, 14, 3, 22)


@pytest.mark.parametrize(("stored", "listed", "kept"), [
    (StoredCourse("available", DATE), "available", DATE),        # available then and now: kept
    (StoredCourse("available", None), "available", None),        # no date yesterday: looked up
    (StoredCourse("unpublished", DATE), "available", None),      # not available yesterday: looked up
    (StoredCourse("completed", DATE), "available", None),
    (None, "available", None),                                   # new course: looked up
    (StoredCourse("available", DATE), "completed", None),        # not available now: no date asked at all
    (StoredCourse("available", DATE), None, None),
])
def test_a_stored_date_is_kept_only_by_a_course_available_then_and_now(stored, listed, kept):
    assert reusable_published_at(stored, listed) == kept


def test_reusable_dates_are_those_of_courses_stored_available_with_a_date():
    stored = {1: StoredCourse("available", DATE), 2: StoredCourse("available", None),
              3: StoredCourse("unpublished", DATE), 4: StoredCourse("completed", DATE)}
    assert reusable_dates(stored) == {1: DATE}


def account(account_id: int) -> dict:
    return {"id": account_id, "name": f"Account {account_id}"}


def test_accounts_come_from_the_listing_and_only_missing_ones_are_fetched():
    book = AccountBook()
    assert book.refer(7) is False and book.refer(9) is False      # before the listing: wait for it
    assert book.listed([account(1), account(7), account(3), account(7)]) == [9]   # 9 is missing: fetch it
    assert book.repeated == 1
    assert book.refer(3) is False and book.refer(3) is False      # listed, referred twice
    assert book.refer(11) is True and book.refer(11) is False     # after the listing: fetch once
    book.fetched(account(9))
    book.fetched(account(11))
    assert [a["id"] for a in book.accounts()] == [3, 7, 9, 11]    # only referred accounts, by id
