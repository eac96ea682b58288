"""Canvas's REST pagination and parameter parsing, shared by the Canvas and gateway handlers.

canvas-lms `lib/api.rb`: `per_page_for` clamps `per_page` to 1..`MAX_PER_PAGE` (100), default `PER_PAGE` (10);
`build_links_hash` rebuilds each page URL from the request's query parameters minus page/per_page/access_token/
api_key (`Hash#to_query`: pieces sorted, arrays as `key%5B%5D=v`), and `build_links_from_hash` joins
`<url>; rel="..."` with "," in the order current, next, prev, first, last. The base URL is the controller's own
URL helper (e.g. `api_v1_account_courses_url`): always Canvas's host and `/api/v1/...` path.
Rails parameters: the last duplicate of `key` wins; `Array(params[:key])` accepts `key=v` and `key[]=v`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, quote_plus

from sandbox.httpapp import Request
from sandbox.university import AuditEvent

DEFAULT_PER_PAGE, MAX_PER_PAGE = 10, 100          # Api::PER_PAGE, Api::MAX_PER_PAGE
# Parameters Canvas leaves out when it rebuilds a page URL for the Link header (EXCLUDE_IN_PAGINATION_LINKS).
LINK_DROPPED = frozenset({"page", "per_page", "access_token", "api_key"})


def array_param(request: Request, name: str) -> list[str]:
    """Rails' `Array(params[name])`: every `name[]=` value, else the last `name=` value as a one-item list."""
    values = request.query.get(f"{name}[]")
    if values:
        return list(values)
    single = request.last(name)
    return [] if single is None else [single]


def encode_bookmark(event: AuditEvent) -> str:
    raw = json.dumps([event.created_at.timestamp(), event.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_bookmark(token: str, events: list[AuditEvent]) -> int:
    """Index of the first event after the bookmarked one (events are newest first); 0 when unreadable."""
    try:
        created_at, event_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return 0
    for index, event in enumerate(events):
        if (event.created_at.timestamp(), event.id) < (created_at, event_id):
            return index
    return len(events)


def ruby_to_i(text: str) -> int:
    """Ruby's String#to_i: the leading integer, 0 when there is none."""
    found = re.match(r"\s*([+-]?\d+)", text)
    return int(found.group(1)) if found else 0


def per_page_for(request: Request) -> int:
    """`per_page` clamped to 1..100 (Api.per_page_for); the last duplicate wins; default 10."""
    raw = request.last("per_page")
    return DEFAULT_PER_PAGE if raw is None else min(max(ruby_to_i(raw), 1), MAX_PER_PAGE)


def page_number(request: Request) -> int:
    return max(ruby_to_i(request.last("page") or "1"), 1)


def rails_query(query: dict[str, list[str]]) -> str:
    """Rails' to_query of the request parameters minus paging/auth: pieces sorted, arrays as key%5B%5D=v."""
    pieces = []
    for key, values in query.items():
        if key in LINK_DROPPED or not values:
            continue
        if key.endswith("[]"):
            pieces.append("&".join(f"{quote_plus(key)}={quote_plus(v)}" for v in values))
        else:
            pieces.append(f"{quote_plus(key)}={quote_plus(values[-1])}")   # last duplicate wins
    return "&".join(sorted(pieces))


def link_header(request: Request, pages: dict[str, str | int | None], per_page: int) -> str:
    """`<url>; rel="name"` joined by "," without spaces, in Canvas's order current, next, prev, first, last."""
    base = f"{request.base_url}{request.path}?"
    query = rails_query(request.query)
    prefix = f"{base}{query}&" if query else base
    links = []
    for rel in ("current", "next", "prev", "first", "last"):
        page = pages.get(rel)
        if page is not None:
            links.append(f'<{prefix}page={quote(str(page), safe=":")}&per_page={per_page}>; rel="{rel}"')
    return ",".join(links)


def paginate_numbered(items: Sequence[Any], request: Request) -> tuple[list[Any], dict[str, str]]:
    """A numbered page of `items` and its Link header.

    Like Canvas's collections without a count query: a full page links to the next page (which is `[]`
    when the previous page was exactly full) and has no `last`; a partial page knows the total, so it has
    `last` and no `next`.
    """
    per_page, page = per_page_for(request), page_number(request)
    chunk = list(items[(page - 1) * per_page: page * per_page])
    full = len(chunk) == per_page
    total_known = not full and (page == 1 or len(chunk) > 0)
    pages: dict[str, str | int | None] = {
        "current": page,
        "next": page + 1 if full else None,
        "prev": page - 1 if page > 1 else None,
        "first": 1,
        "last": page if total_known else None,
    }
    return chunk, {"Link": link_header(request, pages, per_page)}


def paginate_lookahead(items: Sequence[Any], request: Request) -> tuple[list[Any], dict[str, str]]:
    """A page of a `PaginatedCollection` that reads one row more than it returns (accounts_controller.rb
    #sub_accounts, recursive): `next` only when that extra row exists, never `last` (no total is counted)."""
    per_page, page = per_page_for(request), page_number(request)
    chunk = list(items[(page - 1) * per_page: page * per_page + 1])
    more = len(chunk) > per_page
    pages: dict[str, str | int | None] = {"current": page, "next": page + 1 if more else None,
                                          "prev": page - 1 if page > 1 else None, "first": 1}
    return chunk[:per_page], {"Link": link_header(request, pages, per_page)}


def paginate_counted(items: Sequence[Any], request: Request) -> tuple[list[Any], dict[str, str]]:
    """A page of a collection paginated with `total_entries` (Api.paginate): `last` is always known."""
    per_page, page = per_page_for(request), page_number(request)
    last = max(1, -(-len(items) // per_page))
    pages: dict[str, str | int | None] = {"current": page, "next": page + 1 if page < last else None,
                                          "prev": page - 1 if page > 1 else None, "first": 1, "last": last}
    return list(items[(page - 1) * per_page: page * per_page]), {"Link": link_header(request, pages, per_page)}
