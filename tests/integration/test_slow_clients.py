"""Slow and hostile HTTP clients against a real `hearth serve`: headers sent a
byte at a time, a body that never finishes, idle keep-alive connections, and
request paths that try to write log lines of their own."""

import re
import socket
import threading
import time

import httpx
import pytest

from tests.helpers.models import TINY_MODEL_ID
from tests.helpers.servers import HearthServer

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
KEEP_ALIVE = 1.0
SLOW_CLIENTS = 40


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory, models_dir):
    logs = tmp_path_factory.mktemp("slow")
    server = HearthServer(
        models_dir,
        logs / "config.json",
        logs / "serve.log",
        LLM_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        LLM_BODY_TIMEOUT=str(BODY_TIMEOUT),
        LLM_KEEP_ALIVE_TIMEOUT=str(KEEP_ALIVE),
    )
    yield server
    server.stop()


def connect(server: HearthServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (reads end, or writes fail)."""
    try:
        sock.settimeout(0.05)
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def drip(sock: socket.socket, data: bytes, stop: threading.Event, every: float = 0.25) -> None:
    """Sends ``data`` one byte at a time until the server closes or ``stop`` is set."""
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return
        time.sleep(every)


def plain_health_seconds(server: HearthServer) -> float:
    started = time.monotonic()
    assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
    return time.monotonic() - started


@pytest.mark.parametrize(
    "opening",
    [
        b"",  # connects and sends nothing
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200,  # headers that never end
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # stops between headers
        b"GE",  # stops inside the request line
    ],
    ids=["silent", "endless-header", "between-headers", "request-line"],
)
def test_clients_that_send_headers_slowly_are_disconnected(strict_server, opening):
    stop = threading.Event()
    sockets = [connect(strict_server) for _ in range(SLOW_CLIENTS)]
    drippers = [threading.Thread(target=drip, args=(s, opening, stop), daemon=True) for s in sockets]
    try:
        for dripper in drippers:
            dripper.start()
        time.sleep(0.3)
        # While they hold their connections, others are answered as usual.
        assert plain_health_seconds(strict_server) < 1.0
        deadline = time.monotonic() + HEADER_TIMEOUT + 5
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in sockets):
            time.sleep(0.2)
        assert all(closed_by_server(s) for s in sockets)
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
    assert plain_health_seconds(strict_server) < 1.0


def test_a_body_that_never_finishes_gets_408(strict_server):
    with connect(strict_server) as sock:
        body = b'{"model": "%s", "prompt": "hi"' % TINY_MODEL_ID.encode()
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(body) + 1000)
        )
        sock.sendall(body)
        started = time.monotonic()
        sock.settimeout(BODY_TIMEOUT + 10)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert BODY_TIMEOUT - 0.5 < waited < BODY_TIMEOUT + 5
    assert plain_health_seconds(strict_server) < 1.0


def test_an_idle_keep_alive_connection_is_closed(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.3)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(KEEP_ALIVE + 1.0)
        assert closed_by_server(sock)


def test_a_second_request_on_a_connection_has_its_own_header_deadline(strict_server):
    with connect(strict_server) as sock:
        for _ in range(3):  # answered requests rearm the deadline, they do not use it up
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            time.sleep(0.6)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # then headers that stop
        time.sleep(HEADER_TIMEOUT + 1.0)
        assert closed_by_server(sock)


@pytest.mark.parametrize(
    "path",
    [
        "/x%0a2026-12-02T10:00:00 INFO serve hearth.adapter.requests: POST /api/delete 200 0.001s",
        "/x%0d%0a2026-12-02T10:00:00 INFO serve forged",
        "/x%1b[2J%1b[Hforged",
        "/x%e2%80%a8forged",  # U+2028, a line break to some log viewers
        "/v1/models/a%0aforged%00",
    ],
)
def test_request_paths_cannot_forge_log_lines(strict_server, path):
    before = strict_server.log()
    httpx.get(f"{strict_server.base_url}{path}", timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(strict_server.log()) == len(before):
        time.sleep(0.1)
    written = strict_server.log()[len(before) :]
    assert "forged" in written or "POST /api/delete" in written
    for line in written.splitlines():
        # Every line is one of the process's own: its time stamp, level and process name first.
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) \w+ ", line), line
    assert "\x1b" not in written and "\u2028" not in written and "\x00" not in written
