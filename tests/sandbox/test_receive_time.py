"""sandbox.receive_time: a request is dated by when its bytes arrived, not by when a thread read them."""

import io
import socket
import sys
import time

import pytest

from sandbox.receive_time import StampedSocketReader

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_TIMESTAMPNS is Linux's")


@pytest.fixture
def connection():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        server.settimeout(5)
        yield client, server
        client.close()
        server.close()


def stamped_reader(client, server):
    """A reader whose socket already gets stamps. Linux turns receive timestamps on asynchronously (a deferred
    static key) when the first socket asks for them, and TCP passes no stamp for a packet that arrived before:
    the simulator's first request falls back to its own clock; these tests measure the steady state."""
    reader = StampedSocketReader(server)
    deadline = time.monotonic() + 5
    while reader.stamping and time.monotonic() < deadline:
        client.sendall(b"w")
        assert reader.readinto(bytearray(1)) == 1
        if reader.received() is not None:
            break
        time.sleep(0.01)
    reader.reset()
    return reader


def test_bytes_read_late_are_dated_when_they_arrived(connection):
    client, server = connection
    reader = stamped_reader(client, server)
    rfile = io.BufferedReader(reader)
    assert reader.stamping
    client.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
    sent = time.monotonic()
    time.sleep(0.2)                                   # the server thread is busy elsewhere
    assert rfile.readline() == b"GET /first HTTP/1.1\r\n"
    received = reader.received()
    assert received is not None
    assert abs(received - sent) < 0.05                # not ~0.2 s later, when it was read
    assert time.monotonic() - received >= 0.19


def test_reset_starts_a_new_request_and_buffered_bytes_have_no_stamp(connection):
    client, server = connection
    reader = stamped_reader(client, server)
    rfile = io.BufferedReader(reader)
    client.sendall(b"one\r\ntwo\r\n")                  # two lines in one packet, as a pipelining client sends
    assert rfile.readline() == b"one\r\n"
    assert reader.received() is not None
    reader.reset()
    assert rfile.readline() == b"two\r\n"             # already buffered: no new bytes came off the socket
    assert reader.received() is None                  # the caller falls back to its own clock
    client.sendall(b"three\r\n")
    time.sleep(0.1)
    assert rfile.readline() == b"three\r\n"
    assert reader.received() is not None and time.monotonic() - reader.received() >= 0.09


def test_end_of_stream_and_timeouts_behave_like_a_socket_file(connection):
    client, server = connection
    server.settimeout(0.1)
    rfile = io.BufferedReader(StampedSocketReader(server))
    with pytest.raises(TimeoutError):
        rfile.readline()
    client.sendall(b"last")
    client.shutdown(socket.SHUT_WR)
    assert rfile.read() == b"last"
