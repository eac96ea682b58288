"""The Kaltura simulator, driven by the real KalturaApiClient over HTTP, and the media data it serves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaDetachedResponseProfile,
    KalturaFilterPager,
    KalturaMediaEntryFilter,
    KalturaMediaEntryOrderBy,
    KalturaSessionType,
)
from lxml import etree

from sandbox import media_data
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.kaltura_sim import KalturaSimOptions, KalturaSimulator, start_kaltura_server
from sandbox.media_data import MAX_MATCHES, MediaData, SimClock

SEED = 11
SECRET = "sim-secret"
ROOT = media_data.CATEGORY_ROOT
FROM_DEFAULT = int(media_data.DEFAULT_LAST_TIMESTAMP.timestamp())
NOW = media_data.DATA_UNTIL
pytestmark = pytest.mark.usefixtures("reset_clock")   # the clock goes back to NOW before every test


@pytest.fixture(scope="module")
def sim(media: MediaData, clock: SimClock) -> Iterator[tuple[SimServer, KalturaSimulator]]:
    server, simulator = start_kaltura_server(media, KalturaSimOptions(media.partner_id, SECRET, max_ks_seconds=3600),
                                             clock=clock, server_options=ServerOptions(cost=CostModel(0, 0)))
    yield server, simulator
    server.stop()


def library_client(url: str) -> KalturaClient:
    return KalturaClient(KalturaConfiguration(serviceUrl=url))


@pytest.fixture
def client(sim: tuple[SimServer, KalturaSimulator], media: MediaData) -> KalturaClient:
    kaltura = library_client(sim[0].url)
    kaltura.setKs(kaltura.session.start(SECRET, "", KalturaSessionType.ADMIN, media.partner_id))
    return kaltura


def media_filter(created_from: int = FROM_DEFAULT, prefix: str | None = ROOT,
                 **extra: object) -> KalturaMediaEntryFilter:
    result = KalturaMediaEntryFilter()
    result.createdAtGreaterThanOrEqual = created_from
    if prefix is not None:
        result.categoriesFullNameIn = prefix
    result.orderBy = KalturaMediaEntryOrderBy.CREATED_AT_ASC
    for name, value in extra.items():
        setattr(result, name, value)
    return result


def list_ids(client: KalturaClient, flt: KalturaMediaEntryFilter, pages: int, size: int = 500) -> list[str]:
    ids: list[str] = []
    for index in range(1, pages + 1):
        objects = client.media.list(flt, KalturaFilterPager(pageSize=size, pageIndex=index)).objects
        ids += [entry.id for entry in objects]
        if len(objects) < size:
            break
    return ids


def reference(media: MediaData, created_from: int = FROM_DEFAULT, prefix: str = ROOT, **kwargs: object) -> list[str]:
    return [e.id for e in media_data.listed_entries(media, created_from=created_from, visible_at=int(NOW.timestamp()),
                                                    prefix=prefix, **kwargs)]


# ---------------------------------------------------------------- the generated media
def test_generated_media_has_the_awkward_cases(media: MediaData) -> None:
    listed = media_data.listed_entries(media, created_from=FROM_DEFAULT, visible_at=int(NOW.timestamp()), prefix=ROOT)
    assert len(media.entries) >= 40_000 and len(listed) > 2 * MAX_MATCHES + 5_000
    per_second = Counter(e.created_at for e in media.entries)
    assert sum(1 for n in per_second.values() if n > 1) > 1_000 and max(per_second.values()) > 500
    for boundary in (500, 1000, 9500, MAX_MATCHES, 2 * MAX_MATCHES, 3 * MAX_MATCHES):
        assert listed[boundary - 1].created_at == listed[boundary].created_at, boundary
    assert per_second[FROM_DEFAULT] > 1 and per_second[FROM_DEFAULT - 1] > 0      # on and just before the bound
    links = [link for e in listed for link in e.categories]
    assert any(link.in_context for link in links) and any(not link.in_context and link.course_id for link in links)
    assert any(link.course_id is None and link.full_name.startswith(ROOT + ">") for link in links)
    assert any(link.full_name.startswith(media_data.LOOKALIKE_ROOT) for link in links)
    assert any(len({link.course_id for link in e.categories if link.course_id}) >= 3 for e in listed)
    assert any(len(e.name) > 200 for e in listed) and any(not e.name.isascii() for e in listed)
    assert any(e.status == media_data.STATUS_DELETED for e in media.entries)


def test_generation_is_deterministic() -> None:
    first, again = (media_data.generate_media(3, n_entries=400, n_events=300, course_ids=[7, 8, 9]) for _ in "ab")
    other = media_data.generate_media(4, n_entries=400, n_events=300, course_ids=[7, 8, 9])
    fresh = media_data._generate.__wrapped__(3, 400, 300, (7, 8, 9), ROOT, media_data.DEFAULT_LAST_TIMESTAMP)
    assert fresh is not first                      # generated again, not the cached object
    assert first.entries == again.entries == fresh.entries and first.events == fresh.events
    assert [e.id for e in other.entries] != [e.id for e in first.entries]
    assert {link.course_id for e in fresh.entries for link in e.categories} <= {None, 7, 8, 9}


# ---------------------------------------------------------------- sessions
def test_session_is_required_and_checked(sim: tuple[SimServer, KalturaSimulator], media: MediaData) -> None:
    kaltura = library_client(sim[0].url)
    with pytest.raises(KalturaException) as missing:
        kaltura.media.list(media_filter(), KalturaFilterPager(pageSize=5, pageIndex=1))
    assert missing.value.code == "MISSING_KS"
    for secret, partner in ((SECRET + "x", media.partner_id), (SECRET, media.partner_id + 1)):
        with pytest.raises(KalturaException) as refused:
            kaltura.session.start(secret, "", KalturaSessionType.ADMIN, partner)
        assert refused.value.code == "START_SESSION_ERROR"
    kaltura.setKs("bm90IGEga3M=")
    with pytest.raises(KalturaException) as invalid:
        kaltura.media.list(media_filter(), KalturaFilterPager(pageSize=5, pageIndex=1))
    assert invalid.value.code == "INVALID_KS"


def test_session_expires_on_the_clock(sim: tuple[SimServer, KalturaSimulator], media: MediaData,
                                      clock: SimClock) -> None:
    kaltura = library_client(sim[0].url)
    short = kaltura.session.start(SECRET, "", KalturaSessionType.ADMIN, media.partner_id, 60)
    capped = kaltura.session.start(SECRET, "", KalturaSessionType.ADMIN, media.partner_id, 86_400)  # server max 1h
    pager = KalturaFilterPager(pageSize=1, pageIndex=1)
    clock.advance(timedelta(seconds=61))
    kaltura.setKs(short)
    with pytest.raises(KalturaException) as expired:
        kaltura.media.list(media_filter(), pager)
    assert expired.value.code == "INVALID_KS" and "EXPIRED" in expired.value.message
    kaltura.setKs(capped)
    assert kaltura.media.list(media_filter(), pager).objects
    clock.advance(timedelta(seconds=3600))
    with pytest.raises(KalturaException, match="EXPIRED"):
        kaltura.media.list(media_filter(), pager)


# ---------------------------------------------------------------- media.list
@pytest.mark.parametrize("prefix", [ROOT, f"{ROOT}>site>channels>", media_data.LOOKALIKE_ROOT, "",
                                    f"MediaSpace,{ROOT}>site>galleries"])
def test_listing_matches_the_reference(client: KalturaClient, media: MediaData, prefix: str) -> None:
    flt = media_filter(prefix=prefix or None)
    expected = reference(media, prefix=prefix)
    assert list_ids(client, flt, pages=4) == expected[:2000]
    assert client.media.list(flt, KalturaFilterPager(pageSize=1, pageIndex=1)).totalCount == len(expected)


def test_lookalike_tree_is_not_the_university_tree(media: MediaData) -> None:
    lookalike_only = [e for e in media.entries
                      if e.categories and all(link.full_name.startswith(media_data.LOOKALIKE_ROOT)
                                              for link in e.categories)]
    assert lookalike_only
    assert not set(e.id for e in lookalike_only) & set(reference(media, created_from=0))


def test_lower_bound_is_inclusive_and_ids_can_be_excluded(client: KalturaClient, media: MediaData) -> None:
    at_bound = [e.id for e in media.entries if e.created_at == FROM_DEFAULT and e.status != media_data.STATUS_DELETED
                and media_data.matches_categories(e, [ROOT])]
    first_page = list_ids(client, media_filter(), pages=1, size=50)
    assert first_page[:len(at_bound)] == sorted(at_bound)
    excluded = first_page[:3]
    after = list_ids(client, media_filter(idNotIn=",".join(excluded)), pages=1, size=50)
    assert after == [i for i in reference(media) if i not in excluded][:50]


def test_page_size_is_clamped_and_defaults(client: KalturaClient) -> None:
    assert len(client.media.list(media_filter(), KalturaFilterPager(pageSize=2000, pageIndex=1)).objects) == 500
    assert len(client.media.list(media_filter()).objects) == 30


@pytest.mark.parametrize(("size", "last_ok"), [(500, 20), (100, 100)])
def test_no_paging_beyond_ten_thousand_matches(client: KalturaClient, media: MediaData, size: int,
                                               last_ok: int) -> None:
    flt = media_filter()
    last = client.media.list(flt, KalturaFilterPager(pageSize=size, pageIndex=last_ok)).objects
    assert [e.id for e in last] == reference(media)[MAX_MATCHES - size:MAX_MATCHES]
    with pytest.raises(KalturaException) as refused:
        client.media.list(flt, KalturaFilterPager(pageSize=size, pageIndex=last_ok + 1))
    assert refused.value.args == ("Unable to generate list. max matches value was reached",
                                  "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED")


def test_a_page_straddling_the_limit_is_cut_at_it(client: KalturaClient, media: MediaData) -> None:
    page = client.media.list(media_filter(), KalturaFilterPager(pageSize=300, pageIndex=34)).objects   # offset 9900
    assert [e.id for e in page] == reference(media)[9_900:MAX_MATCHES]


def test_nothing_exists_before_it_is_created(client: KalturaClient, media: MediaData, clock: SimClock) -> None:
    moment = datetime(2020, 3, 20, 15, tzinfo=UTC)
    clock.set(moment)
    flt = media_filter(created_from=int(moment.timestamp()) - 3 * 86_400)
    result = client.media.list(flt, KalturaFilterPager(pageSize=500, pageIndex=1))
    expected = [e.id for e in media_data.listed_entries(media, created_from=flt.createdAtGreaterThanOrEqual,
                                                        visible_at=int(moment.timestamp()), prefix=ROOT)]
    assert result.totalCount == len(expected) and [e.id for e in result.objects] == expected[:500]
    assert max(e.createdAt for e in result.objects) <= moment.timestamp()


def test_entries_round_trip_through_the_library(client: KalturaClient, media: MediaData) -> None:
    by_id = {e.id: e for e in media.entries}
    objects = client.media.list(media_filter(), KalturaFilterPager(pageSize=500, pageIndex=3)).objects
    for entry in objects:
        original = by_id[entry.id]
        assert (entry.name, entry.createdAt, entry.duration, entry.categories) == (
            original.name, original.created_at, original.duration, original.categories_text)


def test_response_profile_limits_fields(client: KalturaClient) -> None:
    client.setResponseProfile(KalturaDetachedResponseProfile(type=1, fields="id,createdAt"))
    entry = client.media.list(media_filter(), KalturaFilterPager(pageSize=1, pageIndex=1)).objects[0]
    assert entry.id and entry.createdAt and entry.name is NotImplemented


def test_descending_order(client: KalturaClient, media: MediaData) -> None:
    flt = media_filter(orderBy=KalturaMediaEntryOrderBy.CREATED_AT_DESC)
    assert list_ids(client, flt, pages=1, size=20) == reference(media)[::-1][:20]


def test_unsimulated_filters_are_refused(client: KalturaClient) -> None:
    with pytest.raises(KalturaException) as refused:
        client.media.list(media_filter(statusIn="2"), KalturaFilterPager(pageSize=5, pageIndex=1))
    assert refused.value.code == "SIMULATOR_UNSUPPORTED_FILTER"


def test_legacy_flattened_requests_and_error_format(sim: tuple[SimServer, KalturaSimulator], media: MediaData,
                                                    client: KalturaClient) -> None:
    url = f"{sim[0].url}/api_v3/service/media/action/list"
    form = {"format": "2", "ks": client.getKs(), "filter:objectType": "KalturaMediaEntryFilter",
            "filter:createdAtGreaterThanOrEqual": str(FROM_DEFAULT), "filter:categoriesFullNameIn": ROOT,
            "filter:orderBy": "+createdAt", "pager:pageSize": "7"}
    answer = requests.post(url, data=form, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/xml")
    items = etree.fromstring(answer.content).findall("result/objects/item")
    assert [item.findtext("id") for item in items] == reference(media)[:7]
    assert all(item.findtext("objectType") == "KalturaMediaEntry" for item in items)
    error = etree.fromstring(requests.post(f"{sim[0].url}//api_v3/service/nosuch/action/list", json={},
                                           timeout=10).content)
    assert error.findtext("result/error/code") == "SERVICE_DOES_NOT_EXISTS"
    assert error.findtext("result/error/objectType") == "KalturaAPIException"
