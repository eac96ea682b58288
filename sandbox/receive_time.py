"""When a request really reached the simulator: the kernel's receive time of its first bytes.

A simulator thread blocked on a socket may get to run (and so to look at the clock) many milliseconds after
the bytes arrived, while another thread executes a query; measured at `medium` on 2 cores, p90 15 ms and
p99 55 ms. Dating arrivals by that wake-up would bunch them in the throttle, which real Canvas does not see.
Linux stamps every received packet (SO_TIMESTAMPNS); `StampedSocketReader` reads the socket with recvmsg
and keeps the stamp of the first bytes read since `reset`. Elsewhere, when the bytes were already buffered (a
pipelining client), or for the first packets after the process asked for stamps (Linux turns them on through a
deferred static key, and TCP passes none for a packet received before), the caller falls back to its own clock.
"""

from __future__ import annotations

import io
import socket
import struct
import sys
import time

_LINUX = sys.platform.startswith("linux")
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)      # same value for SCM_TIMESTAMPNS
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


class StampedSocketReader(io.RawIOBase):
    """A raw reader of a connected socket that remembers when the first bytes since `reset` arrived."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._first_stamp: float | None = None     # wall-clock seconds, as the kernel stamped them
        self.stamping = False
        if _LINUX and _ANCILLARY_SPACE:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.stamping = True
            except OSError:
                pass

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self.stamping:
            return self._sock.recv_into(buffer)
        nbytes, ancillary, _flags, _address = self._sock.recvmsg_into([buffer], _ANCILLARY_SPACE)
        if nbytes and self._first_stamp is None:
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                    self._first_stamp = seconds + nanoseconds * 1e-9
        return nbytes

    def reset(self) -> None:
        """Forget the stamp: the next bytes read belong to a new request."""
        self._first_stamp = None

    def received(self) -> float | None:
        """On the `time.monotonic` scale, when the first bytes read since `reset` arrived; None if unknown."""
        if self._first_stamp is None:
            return None
        return time.monotonic() - max(time.time() - self._first_stamp, 0.0)
