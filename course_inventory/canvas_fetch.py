"""Canvas requests of the COURSE_INVENTORY job (each function is one logical fetch through the shared client)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from clients.canvas import CanvasClient, connection_page
from course_inventory.gql_queries import enrollments_query, enrollments_variables
from course_inventory.transform import first_published_event
from vocab import FatalSourceError, SourceFormatError

logger = logging.getLogger(__name__)

COURSE_LIST_PARAMS = {
    "with_enrollments": "true",
    "enrollment_type[]": ["student", "teacher"],
    "include[]": ["total_students"],
}


def fetch_term(canvas: CanvasClient, account_id: int, term_id: int) -> dict[str, Any]:
    return canvas.gateway_get(f"accounts/{account_id}/terms/{term_id}", kind="terms")


def iter_course_pages(canvas: CanvasClient, account_id: int, term_id: int) -> Iterator[list[dict[str, Any]]]:
    params = {**COURSE_LIST_PARAMS, "enrollment_term_id": term_id}
    for page in canvas.gateway_paginate(f"accounts/{account_id}/courses", params, kind="courses"):
        if not isinstance(page, list) or not all(isinstance(course, dict) for course in page):
            raise SourceFormatError(f"the course listing of term {term_id} is not a JSON list of courses",
                                    source="canvas")
        yield page


# A 401 without a WWW-Authenticate challenge is Canvas's "user not authorized to perform that action".
PERMISSIONS = {"audit": "view_course_changes (course audit log)", "analytics": "view_analytics (course analytics)"}


def permission_error(exc: FatalSourceError, kind: str) -> FatalSourceError:
    """A job-stopping error that says which permission the Canvas token lacks, not one warning per course."""
    if exc.status != 401:
        return exc
    if exc.credentials_rejected:
        return FatalSourceError("Canvas rejected the token (HTTP 401 with a challenge): CANVAS.CANVAS_TOKEN is "
                                "invalid or expired", source="canvas", status=401, url=exc.url)
    return FatalSourceError(f"Canvas refused the {kind} request (HTTP 401): the token lacks the permission "
                            f"{PERMISSIONS[kind]}", source="canvas", status=401, url=exc.url)


def fetch_account(canvas: CanvasClient, account_id: int) -> dict[str, Any]:
    account = canvas.get(f"accounts/{account_id}", kind="accounts")
    if not isinstance(account, dict):
        raise SourceFormatError(f"account {account_id} is not a JSON object", source="canvas")
    return account


def fetch_account_tree(canvas: CanvasClient, account_id: int) -> list[dict[str, Any]]:
    """The account and every account below it: itself, then `sub_accounts?recursive=true` page by page
    (canvas-lms accounts_controller.rb#sub_accounts; the Canvas token, whose user reads accounts for the
    preflight already: the gateway's scope is not documented to include this path)."""
    accounts = [fetch_account(canvas, account_id)]
    for page in canvas.paginate(f"accounts/{account_id}/sub_accounts", {"recursive": "true"}, kind="accounts"):
        if not isinstance(page, list) or not all(isinstance(account, dict) for account in page):
            raise SourceFormatError(f"the sub-accounts of account {account_id} are not a JSON list of accounts",
                                    source="canvas")
        accounts.extend(page)
    return accounts


def fetch_published_at(canvas: CanvasClient, course_id: int) -> datetime | None:
    """created_at of the newest `published` audit event, following pages only until one is found."""
    try:
        for page in canvas.paginate(f"audit/course/courses/{course_id}", kind="audit"):
            if not isinstance(page, dict) or not isinstance(page.get("events"), list):
                raise SourceFormatError(f"course {course_id}: the audit log page has no list of events",
                                        source="canvas")
            found, published_at = first_published_event(page)
            if found:
                return published_at
    except FatalSourceError as exc:
        if exc.status != 404:
            raise permission_error(exc, "audit") from exc
        logger.warning("course %d: no audit log (404); published_at left empty", course_id)
    return None


def fetch_activity(canvas: CanvasClient, course_id: int) -> list[dict[str, Any]]:
    """The course's daily activity; [] when Canvas has none (404: analytics off, or no active students)."""
    try:
        days = canvas.get_unless_missing(f"courses/{course_id}/analytics/activity", kind="analytics")
    except FatalSourceError as exc:
        raise permission_error(exc, "analytics") from exc
    if days is None:
        logger.debug("course %d: no analytics (404); no usage rows", course_id)
        return []
    if not isinstance(days, list) or not all(isinstance(day, dict) for day in days):
        raise SourceFormatError(f"course {course_id}: analytics activity is not a JSON list of days", source="canvas")
    return days


def fetch_enrollment_pages(canvas: CanvasClient, pages: Sequence[tuple[int, str | None]], *, follow_up: bool = False,
                           expected_rows: int | None = None) -> list[tuple[int, list[dict[str, Any]], str | None]]:
    """One GraphQL request for one enrollment page of several courses: (course id, nodes, next cursor) each.

    Every course asked for had students in the listing, so a missing course or roster is an error, never "no
    enrollments"; so are errors beside the data (a field Canvas could not resolve may be null). A `follow_up`
    (a later page of a chain) goes ahead of the requests waiting for the limiter: a chain is as slow as its
    pages' waits added up, and one still running after the rest of the work is done ends the run on its own.
    `expected_rows` (`gql_queries.expected_page_rows`) goes to the Canvas limiter.
    """
    result = canvas.graphql(enrollments_query(len(pages)), enrollments_variables(pages), urgent=follow_up,
                            expected_rows=expected_rows)
    if result.errors:
        raise FatalSourceError(f"Canvas GraphQL answered with {len(result.errors)} error(s) beside its data, first: "
                               f"{result.errors[0]}", source="canvas", url="/api/graphql")
    results = []
    for i, (course_id, _) in enumerate(pages):
        if result.data.get(f"c{i}") is None:
            raise FatalSourceError(f"Canvas GraphQL returned no course {course_id}, which the listing has: deleted "
                                   "since, or not readable with this token", source="canvas", url="/api/graphql")
        page = connection_page(result.data, [f"c{i}", "enrollmentsConnection"])
        if page is None:
            raise FatalSourceError(f"Canvas GraphQL returned no enrollments for course {course_id}, which has "
                                   "students: the token cannot read course rosters (it needs the read_roster "
                                   "permission)", source="canvas", url="/api/graphql")
        nodes, cursor = page
        results.append((course_id, nodes, cursor))
    return results
