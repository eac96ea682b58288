"""Section SIS ids from two sources: Canvas (GraphQL `Section.sisId`) and the UDW (`course_section_dim`).

Pure decision rules, no I/O: compare the two sources section by section, pick the configured winner, and
word what a log line says about them. Values are compared as stored (text, blank = absent), so a section
absent from both sources agrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from course_inventory.transform import sis_text


class SisIdSource(StrEnum):
    """Whose section SIS ids are stored when both are available (configuration SECTION_SIS_IDS_FROM)."""

    UDW = "UDW"          # the original tool's values, so existing dashboards keep seeing the same ids
    CANVAS = "CANVAS"


@dataclass(frozen=True)
class SisIdDisagreement:
    section_id: int
    canvas: str | None
    warehouse: str | None
    in_warehouse: bool   # False: course_section_dim has no row for the section at all

    @property
    def kind(self) -> str:
        if self.warehouse is None:
            return "only in Canvas"
        if self.canvas is None:
            return "only in the UDW"
        return "different"

    def describe(self) -> str:
        """`section 3001: Canvas '2510EECS001', UDW none (no course_section_dim row)` (SIS ids are not secrets)."""
        warehouse = repr(self.warehouse) if self.warehouse is not None else "none"
        if not self.in_warehouse:
            warehouse += " (no course_section_dim row)"
        canvas = repr(self.canvas) if self.canvas is not None else "none"
        return f"section {self.section_id}: Canvas {canvas}, UDW {warehouse}"


@dataclass(frozen=True)
class SisIdComparison:
    sections: int                                 # sections compared (those the inventory holds)
    missing_from_warehouse: int                   # of them, sections without a course_section_dim row
    disagreements: tuple[SisIdDisagreement, ...]  # by section id

    def count_by_kind(self) -> dict[str, int]:
        counts = {"only in Canvas": 0, "only in the UDW": 0, "different": 0}
        for disagreement in self.disagreements:
            counts[disagreement.kind] += 1
        return counts


def compare_section_sis_ids(canvas: Mapping[int, str | None], warehouse: Mapping[int, str | None]
                            ) -> SisIdComparison:
    """Every section of `canvas` (the inventory's sections) whose SIS id differs in `warehouse`.

    `warehouse` holds the sections course_section_dim has (value None for a NULL sis_source_id); a section
    missing there counts as having no SIS id, so it disagrees only if Canvas has one.
    """
    disagreements = []
    for section_id in sorted(canvas):
        canvas_value, warehouse_value = sis_text(canvas[section_id]), sis_text(warehouse.get(section_id))
        if canvas_value != warehouse_value:
            disagreements.append(SisIdDisagreement(section_id, canvas_value, warehouse_value,
                                                   in_warehouse=section_id in warehouse))
    missing = sum(1 for section_id in canvas if section_id not in warehouse)
    return SisIdComparison(len(canvas), missing, tuple(disagreements))


def chosen_sis_ids(canvas: Mapping[int, str | None], warehouse: Mapping[int, str | None],
                   source: SisIdSource) -> dict[int, str | None]:
    """Each section's stored SIS id: the winning source's value, None where that source has none.

    The winner is taken as it is, absences included: a section the warehouse lacks stays NULL under UDW,
    exactly what the original warehouse-only tool stored.
    """
    winner = warehouse if source is SisIdSource.UDW else canvas
    return {section_id: sis_text(winner.get(section_id)) for section_id in canvas}


def comparison_summary(comparison: SisIdComparison, source: SisIdSource, examples: int = 5) -> str:
    """One log line: how many sections differ, of which kind, which source is stored, and a few examples."""
    if not comparison.disagreements:
        return (f"section SIS ids: Canvas and the UDW agree on all {comparison.sections} section(s); "
                f"storing the {source.value} values")
    kinds = ", ".join(f"{n} {kind}" for kind, n in comparison.count_by_kind().items() if n)
    shown = "; ".join(d.describe() for d in comparison.disagreements[:examples])
    more = len(comparison.disagreements) - examples
    return (f"section SIS ids: {len(comparison.disagreements)} of {comparison.sections} section(s) differ "
            f"between Canvas and the UDW ({kinds}; {comparison.missing_from_warehouse} section(s) have no "
            f"course_section_dim row); storing the {source.value} values (SECTION_SIS_IDS_FROM). "
            f"E.g. {shown}" + (f"; and {more} more" if more > 0 else ""))


def none_readable(canvas: Mapping[int, str | None]) -> bool:
    """True when there are sections and Canvas gave none of them a SIS id.

    Canvas answers `Section.sisId` null to a user without the read_sis or manage_sis permission on the
    course (canvas-lms app/graphql/types/section_type.rb), so an all-null answer may mean the token cannot
    see SIS ids rather than that no section has one.
    """
    return bool(canvas) and all(sis_text(value) is None for value in canvas.values())
