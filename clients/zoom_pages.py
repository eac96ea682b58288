"""Pure parsing of what the Zoom LTI flow reads: Canvas's sessionless-launch JSON, the LTI launch page, Zoom's app
page and its meeting-history JSON. Used by `clients.zoom_lti`; no I/O here.

HTML goes through BeautifulSoup; the `scid` / `X-XSRF-TOKEN` values are read from the page's script text with a
small JavaScript tokenizer, so quoting (`"`, `'`), spacing, dotted/bracket/JSON forms and comments do not matter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup
from bs4.element import Tag

from vocab import SourceFormatError

ZOOM = "zoom"
SCID_KEYS = frozenset({"scid", "lti_scid"})
XSRF_KEYS = frozenset({"x-xsrf-token"})            # compared case-insensitively
_SKIPPED_INPUT_TYPES = frozenset({"submit", "button", "reset", "image", "file"})


class NoLaunch(SourceFormatError):
    """The placement genuinely cannot be launched (no tool, no form, no Zoom values): skipped and counted."""


# ---- Canvas's sessionless launch ----
def launch_url(body: Any) -> str:
    """The browser launch URL from a sessionless-launch response `{"id", "name", "url"}`.

    Canvas answers an unmatched tool with HTTP 200 and `{"errors": {"external_tool": ...}}`
    (canvas-lms external_tools_controller.rb): that placement has no tool to launch.
    """
    if isinstance(body, dict) and body.get("errors") and "url" not in body:
        raise NoLaunch("Canvas finds no external tool for the Zoom tab", source="canvas")
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SourceFormatError("sessionless launch response has no launch url", source="canvas")
    return url


# ---- the LTI launch page (Canvas) ----
@dataclass(frozen=True)
class LaunchForm:
    action: str                                       # absolute URL
    method: str
    fields: list[tuple[str, str]] = field(repr=False)  # signed launch parameters, in page order


def launch_form(page: str, page_url: str) -> LaunchForm | None:
    """The page's LTI launch form with what a browser would submit; None when the page has no usable form."""
    soup = BeautifulSoup(page, "html.parser")
    forms = [f for f in soup.find_all("form") if isinstance(f, Tag) and str(f.get("action") or "").strip()]
    if not forms:
        return None
    # Canvas's page has one form; if a page ever has more, the one carrying the LTI message type is the launch.
    form = next((f for f in forms if f.find("input", attrs={"name": "lti_message_type"})), forms[0])
    fields = []
    for element in form.find_all(["input", "textarea"]):
        name = element.get("name")
        if not name or element.has_attr("disabled"):
            continue
        kind = str(element.get("type") or "text").lower()
        if kind in _SKIPPED_INPUT_TYPES or (kind in ("checkbox", "radio") and not element.has_attr("checked")):
            continue
        value = element.get_text() if element.name == "textarea" else element.get("value", "")
        fields.append((str(name), str(value)))
    action = urljoin(page_url, str(form["action"]).strip())
    return LaunchForm(action=action, method=str(form.get("method") or "GET").upper(), fields=fields)


# ---- Zoom's app page ----
@dataclass(frozen=True)
class LaunchValues:
    scid: str = field(repr=False)
    xsrf_token: str = field(repr=False)


_TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\$]|\\.)*`)
  | (?P<name>[A-Za-z_$][\w$]*)
  | (?P<op>===|!==|==|!=|=>|<=|>=|[=:\[\]{}(),;.])
  | (?P<other>\S)
""", re.VERBOSE | re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2:i + 4]):
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def _tokens(script: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of a script; comments dropped, string literals unquoted and unescaped."""
    tokens = []
    for match in _TOKEN.finditer(script):
        kind = match.lastgroup or "other"
        text = match.group()
        if kind == "comment":
            continue
        if kind == "string":
            text = _unescape(text[1:-1])
        tokens.append((kind, text))
    return tokens


def script_assignments(script: str) -> Iterable[tuple[str, str]]:
    """(key, value) for every `key = "v"`, `obj.key = 'v'`, `obj['key'] = "v"`, `"key": "v"` or `key: 'v'`."""
    tokens = _tokens(script)
    for i, (kind, text) in enumerate(tokens):
        if kind not in ("name", "string"):
            continue
        j = i + 1
        if kind == "string" and j < len(tokens) and tokens[j] == ("op", "]"):
            j += 1                                    # obj['key'] = ...
        if j + 1 < len(tokens) and tokens[j][0] == "op" and tokens[j][1] in ("=", ":") \
                and tokens[j + 1][0] == "string":
            yield text, tokens[j + 1][1]


def launch_values(page: str) -> LaunchValues | None:
    """`scid` and `X-XSRF-TOKEN` from the page's scripts (first non-empty of each); None when either is absent."""
    soup = BeautifulSoup(page, "html.parser")
    scid = xsrf = None
    for script in soup.find_all("script"):
        for key, value in script_assignments(script.get_text()):
            value = value.strip()
            if not value:
                continue
            if scid is None and key in SCID_KEYS:
                scid = value
            elif xsrf is None and key.lower() in XSRF_KEYS:
                xsrf = value
        if scid and xsrf:
            return LaunchValues(scid=scid, xsrf_token=xsrf)
    return None


# ---- Zoom's previous-meetings API ----
@dataclass(frozen=True)
class HistoryPage:
    total: int
    page_size: int
    meetings: list[dict[str, Any]]

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size)


def history_page(body: Any) -> HistoryPage:
    """`{"status", "errorCode", "result": {"total", "pageSize", "list"}}` -> HistoryPage; SourceFormatError else."""
    if not isinstance(body, dict):
        raise SourceFormatError("Zoom meeting history is not a JSON object", source=ZOOM)
    result = body.get("result")
    if body.get("status") is False or not isinstance(result, dict):
        message = str(body.get("errorMessage") or "no result")[:200]
        raise SourceFormatError(f"Zoom meeting history error {body.get('errorCode')}: {message}", source=ZOOM)
    total, size, items = result.get("total"), result.get("pageSize"), result.get("list")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise SourceFormatError(f"Zoom meeting history total is not a count: {total!r}", source=ZOOM)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise SourceFormatError(f"Zoom meeting history pageSize is not positive: {size!r}", source=ZOOM)
    if items is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise SourceFormatError("Zoom meeting history list is not a list of objects", source=ZOOM)
    return HistoryPage(total=total, page_size=size, meetings=items)
