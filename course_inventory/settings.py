"""COURSE_INVENTORY's typed settings, read from the validated configuration (config/env_schema.hjson holds
every key's type and default; nothing here adds one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clients.canvas import CanvasSettings
from clients.http import Timeouts
from course_inventory.section_sis import SisIdSource
from source_settings import canvas_settings


@dataclass(frozen=True)
class InventorySettings:
    canvas: CanvasSettings
    inventory_db: Mapping[str, Any] | None = field(repr=False)   # None: the caller brings an engine
    udw: Mapping[str, Any] | None = field(repr=False)      # None: section SIS ids from Canvas alone
    sis_ids_from: SisIdSource
    reuse_published_dates: bool
    create_csvs: bool


def settings_from_env(env: Mapping[str, Any], *, timeouts: Timeouts | None = None) -> InventorySettings:
    return InventorySettings(
        canvas=canvas_settings(env, timeouts=timeouts), inventory_db=env.get("INVENTORY_DB"), udw=env.get("UDW"),
        sis_ids_from=SisIdSource(env["SECTION_SIS_IDS_FROM"]), reuse_published_dates=env["REUSE_PUBLISHED_DATES"],
        create_csvs=env["CREATE_CSVS"])
