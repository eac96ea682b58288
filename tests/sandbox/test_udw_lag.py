"""The warehouse's lag behind Canvas: seeded, in the asked proportions, stale values always differ."""

from __future__ import annotations

import pytest

from sandbox.udw_lag import NO_LAG, Fate, UdwLag, older_sis_id, section_fates, warehouse_sis_ids
from sandbox.university import Section


def sections(n: int) -> list[Section]:
    kinds = (None, "123456", "2510EECS{}")
    return [Section(id=20_000 + i, course_id=i // 3, name=f"S{i}",
                    sis_source_id=None if kinds[i % 3] is None else kinds[i % 3].format(i)) for i in range(n)]


def test_shares_follow_the_lag_and_the_draw_is_reproducible():
    many = sections(20_000)
    lag = UdwLag(missing_share=0.1, stale_share=0.05, seed=1)
    fates = section_fates(many, lag, university_seed=7)
    share = {fate: sum(f is fate for f in fates.values()) / len(many) for fate in Fate}
    assert share[Fate.MISSING] == pytest.approx(0.1, abs=0.01)
    assert share[Fate.STALE] == pytest.approx(0.05, abs=0.01)
    assert section_fates(list(reversed(many)), lag, 7) == fates            # order of the input does not matter
    assert section_fates(many, lag, 8) != fates                            # the university's seed matters
    assert section_fates(many, UdwLag(0.1, 0.05, seed=2), 7) != fates      # and the lag's own


def test_warehouse_holds_current_rows_older_ids_and_lacks_missing_sections():
    many = sections(3_000)
    lag = UdwLag(missing_share=0.2, stale_share=0.3)
    fates = section_fates(many, lag, 5)
    warehouse = warehouse_sis_ids(many, lag, 5)
    for section in many:
        fate = fates[section.id]
        if fate is Fate.MISSING:
            assert section.id not in warehouse
        elif fate is Fate.STALE:
            assert warehouse[section.id] == older_sis_id(section) != section.sis_source_id
        else:
            assert warehouse[section.id] == section.sis_source_id
    stale_values = [warehouse[s.id] for s in many if fates[s.id] is Fate.STALE]
    assert None in stale_values and any(v is not None for v in stale_values)   # assigned since, and replaced


def test_no_lag_is_canvas_itself():
    many = sections(500)
    assert warehouse_sis_ids(many, NO_LAG, 1) == {s.id: s.sis_source_id for s in many}


def test_older_id_covers_assigned_replaced_and_removed():
    assert older_sis_id(Section(10, 1, "a", "S10")) is None                 # assigned since the export
    assert older_sis_id(Section(11, 1, "a", "S11")) == "PREV-S11"           # replaced
    assert older_sis_id(Section(12, 1, "a", None)) == "PREV-12"             # removed since


@pytest.mark.parametrize(("missing", "stale"), [(-0.1, 0.0), (0.0, 1.5), (0.6, 0.5)])
def test_impossible_shares_are_refused(missing, stale):
    with pytest.raises(ValueError, match="UdwLag"):
        UdwLag(missing_share=missing, stale_share=stale)
