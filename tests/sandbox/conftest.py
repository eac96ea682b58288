"""Fixtures shared by the media simulator tests: the generated MiVideo data and a settable clock.

Each test module that uses them sets its own module constants: SEED (which media data to generate) and NOW
(where the clock starts, and where it is put back before every test). A module opts in to the reset with
`pytestmark = pytest.mark.usefixtures("reset_clock")`.
"""

from __future__ import annotations

import pytest

from sandbox import media_data
from sandbox.media_data import MediaData, SimClock


@pytest.fixture(scope="module")
def media(request: pytest.FixtureRequest) -> MediaData:
    return media_data.generate_media(request.module.SEED)


@pytest.fixture(scope="module")
def clock(request: pytest.FixtureRequest) -> SimClock:
    # No NOW in the module means a clock on real time.
    return SimClock(getattr(request.module, "NOW", None))


@pytest.fixture
def reset_clock(request: pytest.FixtureRequest, clock: SimClock) -> None:
    # Not autouse: other modules here define their own, different `clock` fixtures.
    clock.set(request.module.NOW)
