"""All of the window's network I/O, on background threads: polling GetStatus and
ListModels, following WatchEvents, checking the REST adapter's /health, and the
user's actions (load, unload, a playground stream).

Nothing here blocks the render thread: the public methods hand work to a
thread and return, and every result is posted as a desktop.messages message
on the outbox queue, which the render loop drains each frame.

Plain threads and the synchronous gRPC API rather than grpc.aio: grpc.aio
binds a process-wide poller to one event loop, which misbehaves once a loop
has been closed and another started (every test starts a link)."""

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from hearth.client import EngineCallError, EngineClient, finish_reason_name
from hearth.client.sync import CallStream
from hearth.desktop import messages as msg
from hearth.engine.v1 import engine_pb2 as pb
from hearth.tls import ClientTls

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
ADAPTER_POLL_SECONDS = 2.0
STATUS_TIMEOUT = 3.0
LIST_TIMEOUT = 10.0
# Loading a large model from a slow disk takes minutes; the engine answers when done.
LOAD_TIMEOUT = 900.0
UNLOAD_TIMEOUT = 120.0
# Pulls have no deadline: a download takes as long as the network needs; closing the window cancels it.
WATCH_RETRY_SECONDS = 1.0
# Load, unload and the playground stream at once, with room to spare.
ACTION_THREADS = 4


class EngineLink:
    def __init__(
        self, engine_address: str, rest_url: str, outbox: queue.Queue, api_key: str = "", tls: ClientTls | None = None
    ):
        self.engine_address = engine_address
        self._rest_url = rest_url
        self._outbox = outbox
        # Replaced whole, never mutated: threads read it without a lock.
        self._api_key = api_key
        self._client = EngineClient(engine_address, api_key=api_key, tls=tls)
        self._stopping = threading.Event()
        self._poke = threading.Event()
        self._actions = ThreadPoolExecutor(max_workers=ACTION_THREADS, thread_name_prefix="hearth-action")
        self._calls_lock = threading.Lock()
        self._generations: dict[int, CallStream] = {}
        self._pulls: dict[str, CallStream] = {}
        # The streams followed (WatchEvents, WatchLogs), by name.
        self._follows: dict[str, CallStream] = {}
        self._threads = [
            threading.Thread(target=self._poll_engine, name="hearth-poll", daemon=True),
            threading.Thread(target=self._watch_events, name="hearth-watch", daemon=True),
            threading.Thread(target=self._watch_logs, name="hearth-logs", daemon=True),
            threading.Thread(target=self._poll_adapter, name="hearth-health", daemon=True),
        ]

    # ---------------------------------------------------------- called from the render thread; none of them wait

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._poke.set()
        with self._calls_lock:
            calls = [*self._generations.values(), *self._pulls.values(), *self._follows.values()]
        for call in calls:
            if call is not None:
                call.cancel()
        self._actions.shutdown(wait=False, cancel_futures=True)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)
        self._client.close()

    def set_api_key(self, api_key: str) -> None:
        self._api_key = api_key
        self._client.set_api_key(api_key)
        self._poke.set()

    def set_rest_url(self, rest_url: str) -> None:
        self._rest_url = rest_url

    def refresh(self) -> None:
        """Poll now rather than at the next tick."""
        self._poke.set()

    def load_model(self, model_id: str) -> None:
        self._actions.submit(self._load, model_id)

    def unload_model(self, model_id: str) -> None:
        self._actions.submit(self._unload, model_id)

    def update_model_settings(self, model_id: str, settings: pb.ModelSettings) -> None:
        self._actions.submit(self._update_settings, model_id, settings)

    def pull_model(self, reference: str) -> None:
        """Downloads a model from Hugging Face through the engine (TaskProgress, then TaskEnded).
        A thread of its own: a pull may take hours and must not hold up loads and chats."""
        threading.Thread(target=self._pull, args=(reference,), name=f"pull-{reference}", daemon=True).start()

    def generate(self, chat_id: int, request: pb.GenerateRequest) -> None:
        self._actions.submit(self._generate, chat_id, request)

    def cancel_generation(self, chat_id: int) -> None:
        # Cancelling only flags the call; the thread reading the stream sees it end.
        with self._calls_lock:
            call = self._generations.get(chat_id)
        if call is not None:
            call.cancel()

    # ---------------------------------------------------------- background threads

    def _post(self, message: msg.Message) -> None:
        self._outbox.put(message)

    def _wait(self, seconds: float) -> None:
        """Sleeps until the next tick, an early refresh, or close."""
        self._poke.wait(seconds)
        self._poke.clear()

    def _poll_engine(self) -> None:
        while not self._stopping.is_set():
            try:
                self._post(msg.StatusReceived(self._client.status(timeout=STATUS_TIMEOUT)))
                self._post(msg.ModelsListed(tuple(self._client.list_models(timeout=LIST_TIMEOUT))))
            except EngineCallError as exc:
                if self._stopping.is_set():
                    return
                self._post(msg.EngineUnavailable(exc.describe(), exc.not_listening))
            self._wait(POLL_SECONDS)

    def _poll_adapter(self) -> None:
        # trust_env=False: a proxy from the environment must not sit between us and localhost.
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while not self._stopping.is_set():
                url = self._rest_url
                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                try:
                    reply = http.get(f"{url}/health", headers=headers)
                    detail = ""
                    if reply.status_code != 200:
                        try:
                            detail = reply.json()["error"]["message"]
                        except (ValueError, KeyError, TypeError):
                            detail = reply.reason_phrase
                    self._post(msg.AdapterHealth(url, reply.status_code, detail))
                except httpx.HTTPError as exc:
                    self._post(msg.AdapterHealth(url, None, type(exc).__name__))
                self._stopping.wait(ADAPTER_POLL_SECONDS)

    def _watch_events(self) -> None:
        def take(event: pb.WatchEventsResponse) -> None:
            self._post(msg.EngineEvent(event))
            if event.HasField("model_state_changed"):
                # The listing carries memory and the rest of the model's new state.
                self._poke.set()

        self._follow("WatchEvents", self._client.watch_events, take)

    def _watch_logs(self) -> None:
        self._follow("WatchLogs", self._client.watch_logs, lambda line: self._post(msg.EngineLogLine(line)))

    def _follow(self, name: str, start: Callable[[], CallStream], take: Callable) -> None:
        """Follows a never-ending stream of the engine, opened again after it drops, until the link closes."""
        while not self._stopping.is_set():
            call = start()
            with self._calls_lock:
                self._follows[name] = call
            try:
                for message in call:
                    take(message)
            except EngineCallError as exc:
                log.debug("%s ended: %s", name, exc.describe())
            finally:
                call.cancel()
            self._stopping.wait(WATCH_RETRY_SECONDS)

    def _load(self, model_id: str) -> None:
        task = f"load:{model_id}"
        self._post(msg.TaskProgress(task, f"Loading {model_id}"))
        try:
            model = self._client.load_model(model_id, timeout=LOAD_TIMEOUT)
            memory = f" ({model.memory_bytes / 1e6:.0f} MB)" if model.memory_bytes else ""
            self._post(msg.TaskEnded(task, True, f"Loaded {model_id}{memory}"))
        except EngineCallError as exc:
            self._post(msg.TaskEnded(task, False, f"Could not load {model_id}: {exc.describe()}"))
        self._poke.set()

    def _unload(self, model_id: str) -> None:
        task = f"unload:{model_id}"
        self._post(msg.TaskProgress(task, f"Unloading {model_id}"))
        try:
            self._client.unload_model(model_id, timeout=UNLOAD_TIMEOUT)
            self._post(msg.TaskEnded(task, True, f"Unloaded {model_id}"))
        except EngineCallError as exc:
            self._post(msg.TaskEnded(task, False, f"Could not unload {model_id}: {exc.describe()}"))
        self._poke.set()

    def _update_settings(self, model_id: str, settings: pb.ModelSettings) -> None:
        task = f"settings:{model_id}"
        self._post(msg.TaskProgress(task, f"Saving the settings of {model_id}"))
        try:
            model = self._client.update_model_settings(model_id, settings, timeout=UNLOAD_TIMEOUT)
            estimate = (
                f"; about {model.estimated_memory_bytes / 1e6:.0f} MB loaded" if model.estimated_memory_bytes else ""
            )
            self._post(
                msg.TaskEnded(task, True, f"Saved the settings of {model_id}: they apply on its next load{estimate}")
            )
        except EngineCallError as exc:
            self._post(msg.TaskEnded(task, False, f"Could not save the settings of {model_id}: {exc.describe()}"))
        self._poke.set()

    def _pull(self, reference: str) -> None:
        task = f"pull:{reference}"
        self._post(msg.TaskProgress(task, f"Pulling {reference}"))
        call = self._client.pull(reference)
        with self._calls_lock:
            self._pulls[task] = call
        done = False
        try:
            for reply in call:
                if reply.phase == pb.PULL_PHASE_DONE:
                    done = True
                    self._post(msg.TaskEnded(task, True, f"Pulled {reply.model.id} from {reference}"))
                elif reply.total_bytes:
                    verb = "Verifying" if reply.phase == pb.PULL_PHASE_VERIFYING else "Downloading"
                    label = f"{verb} {reply.file}"
                    self._post(msg.TaskProgress(task, label, reply.completed_bytes, reply.total_bytes))
        except EngineCallError as exc:
            if exc.cancelled:
                self._post(msg.TaskEnded(task, False, f"The pull of {reference} was cancelled"))
            else:
                self._post(msg.TaskEnded(task, False, f"Could not pull {reference}: {exc.describe()}"))
            done = True
        finally:
            with self._calls_lock:
                self._pulls.pop(task, None)
        if not done:
            self._post(msg.TaskEnded(task, False, f"The engine ended the pull of {reference} early"))
        self._poke.set()

    def _generate(self, chat_id: int, request: pb.GenerateRequest) -> None:
        if not request.request_id:
            request.request_id = f"desktop-{uuid.uuid4().hex[:12]}"
        call = self._client.generate(request)
        with self._calls_lock:
            self._generations[chat_id] = call
        finish, usage = "", None
        try:
            for reply in call:
                # The playground asks for one sequence; index 0 is it.
                if getattr(reply, "index", 0) != 0:
                    continue
                if reply.text or reply.reasoning or reply.tool_calls:
                    calls = tuple((call.name, call.arguments) for call in reply.tool_calls)
                    self._post(msg.ChatDelta(chat_id, reply.text, reasoning=reply.reasoning, tool_calls=calls))
                if reply.finish_reason:
                    finish = finish_reason_name(reply.finish_reason)
                if reply.HasField("usage"):
                    usage = reply.usage
            self._post(
                msg.ChatEnded(
                    chat_id,
                    finish_reason=finish,
                    prompt_tokens=usage.prompt_tokens if usage else 0,
                    completion_tokens=usage.completion_tokens if usage else 0,
                    reasoning_tokens=usage.reasoning_tokens if usage else 0,
                )
            )
        except EngineCallError as exc:
            if exc.cancelled:
                self._post(msg.ChatEnded(chat_id, cancelled=True))
            else:
                self._post(msg.ChatEnded(chat_id, error=exc.describe()))
        finally:
            with self._calls_lock:
                self._generations.pop(chat_id, None)
