"""Comparing and choosing section SIS ids between Canvas and the UDW (pure rules, hand-built cases)."""

import pytest

from course_inventory.section_sis import (
    SisIdDisagreement,
    SisIdSource,
    chosen_sis_ids,
    compare_section_sis_ids,
    comparison_summary,
    none_readable,
)

# Section id -> (Canvas's value, the warehouse's value or MISSING, what the comparison must say).
MISSING = object()
CASES = {
    1: ("A1", "A1", None),                          # same value: agreement
    2: (None, None, None),                          # absent from both: agreement
    3: (None, MISSING, None),                       # no row, and Canvas has none either: agreement
    4: ("B4", MISSING, "only in Canvas"),            # created since the export
    5: ("C5", None, "only in Canvas"),               # row with a NULL id: assigned since
    6: (None, "D6", "only in the UDW"),              # removed from Canvas since
    7: ("E7-new", "E7", "different"),                # replaced since
    8: (" F8 ", "F8", None),                        # compared as stored: trimmed text
    9: ("", MISSING, None),                          # blank is absent
}
CANVAS = {section_id: canvas for section_id, (canvas, _, _) in CASES.items()}
WAREHOUSE = {section_id: udw for section_id, (_, udw, _) in CASES.items() if udw is not MISSING}


def test_every_kind_of_difference_is_found_and_both_absent_is_agreement():
    comparison = compare_section_sis_ids(CANVAS, {**WAREHOUSE, 99: "not an inventory section"})
    expected = {section_id: kind for section_id, (_, _, kind) in CASES.items() if kind}
    assert {d.section_id: d.kind for d in comparison.disagreements} == expected
    assert [d.section_id for d in comparison.disagreements] == sorted(expected)
    assert comparison.sections == len(CASES)
    assert comparison.missing_from_warehouse == 3                      # sections 3, 4 and 9
    assert comparison.count_by_kind() == {"only in Canvas": 2, "only in the UDW": 1, "different": 1}
    four = next(d for d in comparison.disagreements if d.section_id == 4)
    assert four == SisIdDisagreement(4, "B4", None, in_warehouse=False)


def test_identical_sources_agree():
    assert compare_section_sis_ids(CANVAS, dict(CANVAS)).disagreements == ()
    assert compare_section_sis_ids({}, WAREHOUSE).sections == 0


@pytest.mark.parametrize("source", list(SisIdSource))
def test_the_chosen_source_wins_absences_included(source):
    chosen = chosen_sis_ids(CANVAS, WAREHOUSE, source)
    assert set(chosen) == set(CANVAS)                                   # inventory sections only
    if source is SisIdSource.UDW:
        assert chosen == {1: "A1", 2: None, 3: None, 4: None, 5: None, 6: "D6", 7: "E7", 8: "F8", 9: None}
    else:
        assert chosen == {1: "A1", 2: None, 3: None, 4: "B4", 5: "C5", 6: None, 7: "E7-new", 8: "F8", 9: None}


def test_summary_counts_kinds_and_shows_a_few_examples_with_their_sources():
    comparison = compare_section_sis_ids(CANVAS, WAREHOUSE)
    text = comparison_summary(comparison, SisIdSource.UDW, examples=2)
    assert text.startswith("section SIS ids: 4 of 9 section(s) differ between Canvas and the UDW "
                           "(2 only in Canvas, 1 only in the UDW, 1 different; 3 section(s) have no "
                           "course_section_dim row); storing the UDW values")
    assert "section 4: Canvas 'B4', UDW none (no course_section_dim row)" in text
    assert "section 5: Canvas 'C5', UDW none;" in text
    assert "section 6" not in text and text.endswith("and 2 more")
    agreeing = comparison_summary(compare_section_sis_ids(CANVAS, CANVAS), SisIdSource.CANVAS)
    assert agreeing == "section SIS ids: Canvas and the UDW agree on all 9 section(s); storing the CANVAS values"


def test_describe_names_both_values():
    assert SisIdDisagreement(6, None, "D6", True).describe() == "section 6: Canvas none, UDW 'D6'"
    assert SisIdDisagreement(7, "x'y", "z", True).describe() == "section 7: Canvas \"x'y\", UDW 'z'"


def test_all_null_canvas_ids_are_suspicious_only_when_there_are_sections():
    assert none_readable({1: None, 2: " ", 3: ""})
    assert not none_readable({1: None, 2: "S2"})
    assert not none_readable({})


def test_source_names_are_the_configuration_values():
    assert [s.value for s in SisIdSource] == ["UDW", "CANVAS"]
    with pytest.raises(ValueError):
        SisIdSource("udw")


class FakeUdw:
    """Stands in for clients.udw.UdwClient: the sections course_section_dim has."""

    def __init__(self, rows: dict[int, str | None]) -> None:
        self.rows, self.asked = rows, None

    def section_sis_ids(self, section_ids):
        self.asked = sorted(section_ids)
        return {i: self.rows[i] for i in self.asked if i in self.rows}


def raw_with(sections):
    from course_inventory.collect import RawInventory

    return RawInventory(sections={i: (f"S{i}", sis) for i, sis in sections.items()})


def test_job_wiring_without_a_udw_keeps_canvas_ids_and_says_so(caplog):
    from course_inventory.collect import section_sis_ids

    with caplog.at_level("INFO", logger="course_inventory"):
        assert section_sis_ids(raw_with(CANVAS), None, SisIdSource.UDW) is None
    assert "no UDW configured" in caplog.text and "read_sis" not in caplog.text


@pytest.mark.parametrize("source", list(SisIdSource))
def test_job_wiring_with_a_udw_compares_logs_and_returns_the_winner(caplog, source):
    from course_inventory.collect import section_sis_ids

    udw = FakeUdw(WAREHOUSE)
    with caplog.at_level("INFO", logger="course_inventory"):
        chosen = section_sis_ids(raw_with(CANVAS), udw, source)
    assert udw.asked == sorted(CANVAS)
    assert chosen == chosen_sis_ids(CANVAS, WAREHOUSE, source)
    assert "4 of 9 section(s) differ between Canvas and the UDW" in caplog.text


def test_job_warns_when_canvas_shows_no_sis_id_at_all(caplog):
    from course_inventory.collect import section_sis_ids

    with caplog.at_level("INFO", logger="course_inventory"):
        section_sis_ids(raw_with({1: None, 2: None}), FakeUdw({1: "A", 2: "B"}), SisIdSource.UDW)
    warning = next(r for r in caplog.records if r.levelname == "WARNING")
    assert "no SIS id for any of the 2 section(s)" in warning.getMessage() and "read_sis" in warning.getMessage()
