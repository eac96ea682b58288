"""Undo `log_setup.configure_logging` after a test, so later tests keep pytest's log capture only."""

from __future__ import annotations

import logging


def remove_our_handlers() -> None:
    """Remove from the root logger the handlers configure_logging marks as ours (`course_inventory`)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "course_inventory", False):
            root.removeHandler(handler)
