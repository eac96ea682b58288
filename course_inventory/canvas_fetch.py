"""Canvas requests of the COURSE_INVENTORY job (each function is one logical fetch through the shared client)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from clients.canvas import CanvasClient, connection_page
from course_inventory.gql_queries import enrollments_query, enrollments_variables
from course_inventory.transform import first_published_event
from vocab import FatalSourceError

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
    yield from canvas.gateway_paginate(f"accounts/{account_id}/courses", params, kind="courses")


def fetch_account(canvas: CanvasClient, account_id: int) -> dict[str, Any]:
    return canvas.gateway_get(f"accounts/{account_id}", kind="accounts")


def fetch_published_at(canvas: CanvasClient, course_id: int) -> datetime | None:
    """created_at of the newest `published` audit event, following pages only until one is found."""
    try:
        for page in canvas.paginate(f"audit/course/courses/{course_id}", kind="audit"):
            found, published_at = first_published_event(page)
            if found:
                return published_at
    except FatalSourceError as exc:
        if exc.status != 404:
            raise
        logger.warning("course %d: no audit log (404); published_at left empty", course_id)
    return None


def fetch_activity(canvas: CanvasClient, course_id: int) -> list[dict[str, Any]]:
    days = canvas.get_unless_missing(f"courses/{course_id}/analytics/activity", kind="analytics")
    if days is None:
        logger.warning("course %d: no analytics (404); no usage rows", course_id)
        return []
    return days if isinstance(days, list) else []


def fetch_enrollment_pages(canvas: CanvasClient, pages: Sequence[tuple[int, str | None]]
                           ) -> list[tuple[int, list[dict[str, Any]], str | None]]:
    """One GraphQL request for one enrollment page of several courses: (course id, nodes, next cursor) each."""
    data = canvas.graphql(enrollments_query(len(pages)), enrollments_variables(pages))
    results = []
    for i, (course_id, _) in enumerate(pages):
        page = connection_page(data, [f"c{i}", "enrollmentsConnection"])
        if page is None:
            logger.warning("course %d: GraphQL returned no course; no enrollments", course_id)
            results.append((course_id, [], None))
            continue
        nodes, cursor = page
        results.append((course_id, nodes, cursor))
    return results
