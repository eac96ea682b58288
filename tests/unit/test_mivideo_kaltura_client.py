"""KalturaMediaClient without a network: paging across the match limit, retries and error classes."""

from __future__ import annotations

import random
from collections.abc import Collection

import pytest
from KalturaClient.exceptions import KalturaClientException, KalturaException

from clients.kaltura import KalturaMediaClient, KalturaSettings, MaxMatchesExceeded, MediaPage
from clients.retry import RetryPolicy
from vocab import FatalSourceError, RetriableSourceError, SourceFormatError

SECRET = "admin-secret-value"


def settings(attempts: int = 3) -> KalturaSettings:
    return KalturaSettings("http://127.0.0.1:9", 42, SECRET, RetryPolicy(max_attempts=attempts, budget_seconds=0))


class InMemoryKaltura(KalturaMediaClient):
    """media.list over a list of entries with Kaltura's rules, and a small match limit to hit it often."""

    def __init__(self, entries: list[dict], cap: int) -> None:
        super().__init__(settings(), sleep=lambda _: None)
        self.entries = sorted(entries, key=lambda e: (e["createdAt"], e["id"]))
        self.cap, self.requests = cap, 0

    def list_media_page(self, *, created_from: int, categories_full_name_in: str, exclude_ids: Collection[str],
                        page_index: int, page_size: int = 500) -> MediaPage:
        self.requests += 1
        matches = [e for e in self.entries if e["createdAt"] >= created_from and e["id"] not in exclude_ids]
        offset = (page_index - 1) * page_size
        if offset >= self.cap:
            raise MaxMatchesExceeded()
        return MediaPage(matches[offset:min(offset + page_size, self.cap)], len(matches))


def make_entries(seconds: list[int]) -> list[dict]:
    return [{"id": f"1_{i:06d}", "createdAt": s, "name": "n", "duration": 1, "categories": ""}
            for i, s in enumerate(seconds)]


def fetched(client: InMemoryKaltura, created_from: int = 0, page_size: int = 10) -> list[str]:
    return [e["id"] for page in client.iter_media_pages(created_from=created_from, categories_full_name_in="C",
                                                        page_size=page_size) for e in page]


@pytest.mark.parametrize("seed", range(8))
def test_every_entry_exactly_once_across_restarts(seed: int) -> None:
    rng = random.Random(seed)
    seconds: list[int] = []
    second = 1_000
    while len(seconds) < 700:                    # runs of equal seconds, some longer than a page or the limit
        second += rng.randint(1, 3)
        seconds += [second] * rng.choice((1, 1, 2, 5, 11, 40, 130))
    client = InMemoryKaltura(make_entries(seconds), cap=50)
    ids = fetched(client, created_from=1_005)
    assert ids == [e["id"] for e in client.entries if e["createdAt"] >= 1_005]
    assert client.restarts >= 10


def test_a_second_with_more_entries_than_the_limit() -> None:
    client = InMemoryKaltura(make_entries([5] * 173 + [6] * 3), cap=50)
    assert fetched(client) == [e["id"] for e in client.entries]


@pytest.mark.parametrize("count", [0, 10, 50, 100, 101])
def test_end_on_empty_or_exactly_full_pages(count: int) -> None:
    client = InMemoryKaltura(make_entries(list(range(count))), cap=50)
    assert fetched(client) == [e["id"] for e in client.entries]


def test_page_size_must_divide_the_limit() -> None:
    with pytest.raises(ValueError, match="divide"):
        next(InMemoryKaltura([], cap=50).iter_media_pages(created_from=0, categories_full_name_in="C",
                                                          page_size=300))


def test_transient_client_errors_are_retried_then_reported() -> None:
    sleeps: list[float] = []
    client = KalturaMediaClient(settings(attempts=3), sleep=sleeps.append)
    outcomes: list[object] = [KalturaClientException("refused", KalturaClientException.ERROR_CONNECTION_FAILED),
                              AttributeError("'NoneType' object has no attribute 'find'"), "ok"]

    def action() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert client._call("media.list", action, with_session=False) == "ok"
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] / 2
    failing = KalturaMediaClient(settings(attempts=2), sleep=lambda _: None)
    with pytest.raises(RetriableSourceError, match="no result in the response"):
        failing._call("media.list", _raise(KalturaClientException("html page", -8)), with_session=False)


def test_server_errors_are_fatal_and_never_quote_a_session() -> None:
    client = KalturaMediaClient(settings(), sleep=lambda _: None)
    with pytest.raises(FatalSourceError) as refused:
        client._call("session.start", _raise(KalturaException("Error while starting session for partner [42]",
                                                              "START_SESSION_ERROR")), with_session=False)
    assert "START_SESSION_ERROR" in str(refused.value) and SECRET not in str(refused.value)
    with pytest.raises(FatalSourceError) as invalid:
        client._call("media.list", _raise(KalturaException("Invalid KS [djJ8c2VjcmV0]. Error [-1,INVALID_STR]",
                                                           "INVALID_KS")), with_session=False)
    assert "djJ8c2VjcmV0" not in str(invalid.value)
    with pytest.raises(FatalSourceError, match="PROPERTY_VALIDATION_CANNOT_BE_NULL: filter is null"):
        client._call("media.list", _raise(KalturaException("filter is null", "PROPERTY_VALIDATION_CANNOT_BE_NULL")),
                     with_session=False)
    with pytest.raises(MaxMatchesExceeded):
        client._call("media.list", _raise(KalturaException("max matches", "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED")),
                     with_session=False)


def test_settings_hide_the_secret() -> None:
    assert SECRET not in repr(settings())


def test_unknown_first_page_refusal_is_a_format_error() -> None:
    client = InMemoryKaltura(make_entries([1, 2, 3]), cap=0)
    with pytest.raises(SourceFormatError):
        fetched(client)


def _raise(exc: Exception):  # noqa: ANN202 - tiny test helper
    def action() -> object:
        raise exc
    return action
