"""Which accounts the inventory stores, and which must be asked for one by one (no I/O; thread-safe).

The accounts come from one listing of the account tree (the root account plus `GET accounts/:id/sub_accounts
?recursive=true`, a few pages instead of one request per account). The table holds only the accounts the kept
courses refer to, as before. A referred account missing from the listing (created meanwhile, or skipped because
the listing's offset pages shifted: canvas-lms pages it by offset over an unordered query) is fetched on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from course_inventory.transform import canvas_int


class AccountBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listed: dict[int, dict[str, Any]] | None = None   # None until the listing is complete
        self._fetched: dict[int, dict[str, Any]] = {}
        self._referred: set[int] = set()
        self.repeated = 0                                       # accounts the listing returned twice

    def refer(self, account_id: int) -> bool:
        """A kept course's account; True when it must be fetched on its own now."""
        with self._lock:
            if account_id in self._referred:
                return False
            self._referred.add(account_id)
            return self._listed is not None and account_id not in self._listed

    def listed(self, accounts: Iterable[dict[str, Any]]) -> list[int]:
        """The complete listing arrived; returns the accounts referred to so far that it lacks."""
        listed: dict[int, dict[str, Any]] = {}
        for account in accounts:
            account_id = canvas_int(account.get("id"), "account id")
            if account_id in listed:
                self.repeated += 1
            listed.setdefault(account_id, account)
        with self._lock:
            self._listed = listed
            return sorted(self._referred - set(listed))

    def fetched(self, account: dict[str, Any]) -> None:
        with self._lock:
            self._fetched[canvas_int(account.get("id"), "account id")] = account

    def accounts(self) -> list[dict[str, Any]]:
        """The referred accounts, by id (once the listing and every fetch are done)."""
        with self._lock:
            known = {**(self._listed or {}), **self._fetched}
            return [known[account_id] for account_id in sorted(self._referred) if account_id in known]
