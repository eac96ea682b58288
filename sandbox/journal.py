"""What each logical request was answered, as digests, so two runs (two days) can be compared request by request.

A `AnswerJournal` attached to SimServers (`SandboxOptions.journal`, `serve --journal-dir`) records, for every
answer a handler produced (not refusals, outages or injected faults), the route it matched, the logical request
(method, path, query parameters sorted, digest of the request body) and a digest of the status and response body.
A response may also carry `parts` (GraphQL: one per aliased course, keyed by course id and page arguments), each
recorded as its own answer, because a batched request's body changes whenever its batch does while most of its
courses' pages stay the same. `same_answers` counts, per route, how many of a second run's answers were given to
the same logical request in the first run.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.httpapp import Request, Response, logical_key

PART_SUFFIX = " [part]"        # route name of a response part's answers


@dataclass(frozen=True, slots=True)
class Answer:
    server: str
    route: str                 # e.g. "GET /api/v1/audit/course/courses/{course_id:int}", or + PART_SUFFIX
    key: str                   # the logical request
    digest: str                # of the status and body


@dataclass(frozen=True)
class SameAnswers:
    answers: int               # answers in the second run
    asked_before: int          # of which the first run asked the same logical request
    same: int                  # of which the first run got the same answer


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class AnswerJournal:
    """Thread-safe list of answers; `take()` hands them over and starts afresh (one journal per day)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: list[Answer] = []

    def record(self, server: str, route: str, request: Request, response: Response) -> None:
        answers = [Answer(server, route, logical_key(request), digest(b"%d " % response.status + response.body))]
        if response.parts is not None:
            answers += [Answer(server, route + PART_SUFFIX, key, digest(body)) for key, body in response.parts()]
        with self._lock:
            self._answers.extend(answers)

    def take(self) -> list[Answer]:
        with self._lock:
            answers, self._answers = self._answers, []
        return answers


def same_answers(first: Iterable[Answer], second: Iterable[Answer]) -> dict[str, SameAnswers]:
    """Per route of the second run: its answers, those asked in the first run too, and those answered the same."""
    before: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for answer in first:
        before[(answer.server, answer.route, answer.key)].add(answer.digest)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for answer in second:
        seen = before.get((answer.server, answer.route, answer.key))
        row = counts[answer.route]
        row[0] += 1
        row[1] += seen is not None
        row[2] += seen is not None and answer.digest in seen
    return {route: SameAnswers(*row) for route, row in counts.items()}


def write_day(path: Path, day: int, answers: Iterable[Answer], stats: Mapping[str, Any]) -> None:
    """One day's answers and server statistics as JSON (`read_day` reads it back)."""
    payload = {"day": day, "stats": stats,
               "answers": [[a.server, a.route, a.key, a.digest] for a in answers]}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload), encoding="utf-8")
    temporary.replace(path)                   # readers never see a half-written day


def read_day(path: Path) -> tuple[list[Answer], dict[str, Any]]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    return [Answer(*row) for row in payload["answers"]], payload["stats"]
