"""The desktop window's gRPC link, against a fake engine in this process: what it
posts for replies, events, streams and errors, and that every call carries the
API key. No display, no llama.cpp."""

import http.server
import queue
import threading
import time
from concurrent import futures

import grpc
import pytest

from hearth.auth import auth_metadata
from hearth.desktop import messages as msg
from hearth.desktop.engine_link import EngineLink
from hearth.engine.v1 import engine_pb2 as pb
from hearth.engine.v1 import engine_pb2_grpc
from hearth.rpc_errors import status_with_reason

API_KEY = "sk-desktop-test"
MODEL = pb.Model(id="m", architecture="llama", state=pb.MODEL_STATE_UNLOADED, context_window=2048)


class FakeEngine(engine_pb2_grpc.EngineServicer):
    def __init__(self):
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.stream_cancelled = threading.Event()

    def _seen(self, name: str, context) -> None:
        self.calls.append((name, dict(context.invocation_metadata())))

    def GetStatus(self, request, context):
        self._seen("GetStatus", context)
        return pb.GetStatusResponse(backend=pb.BACKEND_CPU, uptime_seconds=5, process_memory_bytes=10_000_000)

    def ListModels(self, request, context):
        self._seen("ListModels", context)
        return pb.ListModelsResponse(models=[MODEL])

    def LoadModel(self, request, context):
        self._seen("LoadModel", context)
        if request.id != "m":
            code, message, trailing = status_with_reason(
                grpc.StatusCode.NOT_FOUND, f"no model {request.id}", "MODEL_NOT_FOUND", {"model": request.id}
            )
            context.set_trailing_metadata(trailing)
            context.abort(code, message)
        time.sleep(0.2)
        return pb.LoadModelResponse(model=pb.Model(id="m", state=pb.MODEL_STATE_READY, memory_bytes=5_000_000))

    def UnloadModel(self, request, context):
        self._seen("UnloadModel", context)
        return pb.UnloadModelResponse(model=MODEL)

    def Generate(self, request, context):
        self._seen("Generate", context)
        if request.model == "endless":
            # gRPC stops pulling from this generator once the call is cancelled,
            # so the loop below may never see it end: the callback does.
            context.add_callback(lambda: self.stream_cancelled.set() if not context.is_active() else None)
            while context.is_active():
                yield pb.GenerateResponse(text="la ")
                time.sleep(0.02)
            self.stream_cancelled.set()
            return
        for piece in ("Hello", ", ", "world"):
            yield pb.GenerateResponse(text=piece)
        yield pb.GenerateResponse(
            finish_reason=pb.FINISH_REASON_STOP, usage=pb.Usage(prompt_tokens=7, completion_tokens=3)
        )

    def WatchEvents(self, request, context):
        self._seen("WatchEvents", context)
        yield pb.WatchEventsResponse(
            timestamp=time.time(),
            request_finished=pb.RequestFinished(model="m", completion_tokens=3, outcome=pb.REQUEST_OUTCOME_COMPLETED),
        )
        while context.is_active():
            time.sleep(0.05)


class HealthHandler(http.server.BaseHTTPRequestHandler):
    authorizations: list[str] = []

    def do_GET(self):
        HealthHandler.authorizations.append(self.headers.get("Authorization", ""))
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_engine():
    engine = FakeEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield engine, f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture
def rest_url():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HealthHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class Inbox:
    """Everything the link posted, kept, so that a test never loses a message it read past."""

    def __init__(self, outbox: queue.Queue):
        self.outbox = outbox
        self.seen: list = []

    def mark(self) -> int:
        """The index the next message will have, once everything posted so far is read."""
        while True:
            try:
                self.seen.append(self.outbox.get_nowait())
            except queue.Empty:
                return len(self.seen)

    def wait_for(self, predicate, since: int = 0, timeout: float = 10.0):
        """The first message from index ``since`` on that satisfies ``predicate``."""
        index = since
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while index < len(self.seen):
                if predicate(self.seen[index]):
                    return self.seen[index]
                index += 1
            try:
                self.seen.append(self.outbox.get(timeout=0.1))
            except queue.Empty:
                pass
        raise AssertionError(f"nothing matched; got {self.seen[since:]}")

    def of(self, kind, since: int = 0) -> list:
        return [m for m in self.seen[since:] if isinstance(m, kind)]


@pytest.fixture
def link(fake_engine, rest_url):
    outbox: queue.Queue = queue.Queue()
    engine_link = EngineLink(fake_engine[1], rest_url, outbox, api_key=API_KEY)
    engine_link.start()
    yield engine_link, Inbox(outbox)
    engine_link.close()


def test_polls_and_events_become_messages(link):
    _, inbox = link
    status = inbox.wait_for(lambda m: isinstance(m, msg.StatusReceived))
    assert status.status.backend == pb.BACKEND_CPU
    listed = inbox.wait_for(lambda m: isinstance(m, msg.ModelsListed))
    assert listed.models[0].id == "m"
    event = inbox.wait_for(lambda m: isinstance(m, msg.EngineEvent))
    assert event.event.request_finished.model == "m"
    health = inbox.wait_for(lambda m: isinstance(m, msg.AdapterHealth))
    assert health.status_code == 200


def test_every_call_carries_the_api_key(link, fake_engine):
    engine_link, inbox = link
    engine, _ = fake_engine
    engine_link.load_model("m")
    engine_link.generate(1, pb.GenerateRequest(model="m", prompt="hi"))
    inbox.wait_for(lambda m: isinstance(m, msg.ChatEnded))
    inbox.wait_for(lambda m: isinstance(m, msg.TaskEnded))
    inbox.wait_for(lambda m: isinstance(m, msg.AdapterHealth))
    names = {name for name, _ in engine.calls}
    assert {"GetStatus", "ListModels", "WatchEvents", "LoadModel", "Generate"} <= names
    assert all(metadata.get("authorization") == f"Bearer {API_KEY}" for _, metadata in engine.calls)
    assert HealthHandler.authorizations and set(HealthHandler.authorizations) == {f"Bearer {API_KEY}"}


def test_no_key_no_authorization_header():
    assert auth_metadata("") == ()
    assert auth_metadata("k") == (("authorization", "Bearer k"),)


def test_a_changed_key_is_used_from_then_on(link, fake_engine):
    engine_link, inbox = link
    engine, _ = fake_engine
    engine_link.set_api_key("new-key")
    time.sleep(0.3)
    engine.calls.clear()
    mark = inbox.mark()
    # A whole poll that started after the change: a status reply, then the listing after it.
    status = inbox.wait_for(lambda m: isinstance(m, msg.StatusReceived), since=mark)
    inbox.wait_for(lambda m: isinstance(m, msg.ModelsListed), since=inbox.seen.index(status))
    assert engine.calls and all(md.get("authorization") == "Bearer new-key" for _, md in engine.calls)


def test_a_stream_arrives_piece_by_piece_then_ends_with_usage(link):
    engine_link, inbox = link
    engine_link.generate(7, pb.GenerateRequest(model="m", prompt="hi"))
    ended = inbox.wait_for(lambda m: isinstance(m, msg.ChatEnded))
    assert [m.text for m in inbox.of(msg.ChatDelta)] == ["Hello", ", ", "world"]
    assert ended == msg.ChatEnded(7, finish_reason="stop", prompt_tokens=7, completion_tokens=3)


def test_stopping_a_stream_cancels_it_at_the_engine(link, fake_engine):
    engine_link, inbox = link
    engine, _ = fake_engine
    engine_link.generate(3, pb.GenerateRequest(model="endless", prompt="sing"))
    inbox.wait_for(lambda m: isinstance(m, msg.ChatDelta))
    engine_link.cancel_generation(3)
    ended = inbox.wait_for(lambda m: isinstance(m, msg.ChatEnded))
    assert ended.cancelled and ended.chat_id == 3
    assert engine.stream_cancelled.wait(5)


def test_a_load_reports_progress_and_its_result(link):
    engine_link, inbox = link
    engine_link.load_model("m")
    loaded = inbox.wait_for(lambda m: isinstance(m, msg.TaskEnded))
    assert msg.TaskProgress("load:m", "Loading m") in inbox.seen
    assert loaded.ok and "Loaded m" in loaded.detail
    mark = inbox.mark()
    engine_link.load_model("nope")
    failed = inbox.wait_for(lambda m: isinstance(m, msg.TaskEnded), since=mark)
    assert not failed.ok
    assert "not_found" in failed.detail and "MODEL_NOT_FOUND" in failed.detail


def test_no_engine_is_reported_as_nothing_listening():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outbox: queue.Queue = queue.Queue()
    engine_link = EngineLink(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}", outbox)
    engine_link.start()
    inbox = Inbox(outbox)
    try:
        unavailable = inbox.wait_for(lambda m: isinstance(m, msg.EngineUnavailable))
        assert unavailable.nothing_listening
        health = inbox.wait_for(lambda m: isinstance(m, msg.AdapterHealth))
        assert health.status_code is None
    finally:
        engine_link.close()
