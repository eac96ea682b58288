"""CANVAS_ZOOM_MEETINGS' typed settings, read from the validated configuration (config/env_schema.hjson holds
every key's type and default; nothing here adds one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clients.canvas import CanvasSettings
from clients.http import Timeouts
from clients.zoom_lti import ZoomSettings
from source_settings import canvas_settings, zoom_settings


@dataclass(frozen=True)
class ZoomMeetingsSettings:
    canvas: CanvasSettings
    zoom: ZoomSettings
    inventory_db: Mapping[str, Any] | None = field(repr=False)   # None: the caller brings an engine
    create_csvs: bool


def settings_from_env(env: Mapping[str, Any], *, timeouts: Timeouts | None = None) -> ZoomMeetingsSettings:
    return ZoomMeetingsSettings(canvas=canvas_settings(env, timeouts=timeouts),
                                zoom=zoom_settings(env, timeouts=timeouts), inventory_db=env.get("INVENTORY_DB"),
                                create_csvs=env["CREATE_CSVS"])
