"""`hearth serve`: the engine as a supervised child process, the adapter in this one.

The engine is restarted if it dies (the adapter answers 503 meanwhile), unless
it exits saying it cannot run (hearth.exit_codes.FINAL): then `hearth serve`
stops with the engine's status instead of restarting it in a loop. SIGTERM
or Ctrl-C stops the adapter, then the engine, and leaves no process behind."""

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time

import uvicorn

from hearth.adapter.server import check_adapter_bind, check_engine_link, uvicorn_config
from hearth.auth import (
    UnsafeBind,
    address_host,
    check_engine_bind,
    normalized_key,
    split_host_port,
)
from hearth.client import AsyncEngineClient
from hearth.exit_codes import FINAL
from hearth.settings.adapter import AdapterSettings
from hearth.settings.engine import EngineSettings
from hearth.tls import ClientTls, ServerTls, TlsSetupError

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 120.0
MAX_BACKOFF_SECONDS = 10.0
# An engine that ran this long before dying restarts without backoff.
HEALTHY_RUN_SECONDS = 60.0


def _die_with_parent() -> None:
    """Linux: the engine gets SIGTERM if this process dies without cleaning up."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EngineProcess:
    def __init__(self, settings: EngineSettings, tls: ClientTls | None = None):
        self.settings = settings
        # How this process reaches the engine's port.
        self.tls = tls
        self.process: asyncio.subprocess.Process | None = None

    def _environment(self) -> dict[str, str]:
        """This process's environment, plus what the engine must share with the adapter
        however it was given here (flag, variable or config file)."""
        env = dict(os.environ)
        api_key = normalized_key(self.settings.api_key)
        if api_key:
            env["LLM_API_KEY"] = api_key
        if self.settings.allow_remote:
            env["LLM_ALLOW_REMOTE"] = "true"
        if self.settings.insecure_remote:
            env["LLM_INSECURE_REMOTE"] = "true"
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            path = getattr(self.settings, name)
            if path is not None:
                env[f"LLM_{name.upper()}"] = str(path)
        return env

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hearth",
            "engine",
            "--models-dir",
            str(self.settings.models_dir),
            "--engine-address",
            self.settings.engine_address,
            # Own session: a terminal's Ctrl-C reaches this process, which then stops the engine in order.
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env=self._environment(),
        )
        log.info("engine started (pid %d)", self.process.pid)

    async def wait_ready(self, timeout: float) -> bool:
        """True once the engine answers its health check; False if it exits or times out."""
        deadline = time.monotonic() + timeout
        client = AsyncEngineClient(self.settings.engine_address, api_key=self.settings.api_key, tls=self.tls)
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.returncode is not None:
                    return False
                if await client.healthy(timeout=1.0):
                    return True
                await asyncio.sleep(0.2)
            return False
        finally:
            await client.close()

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except asyncio.TimeoutError:
            log.warning("engine did not stop in %.0fs; killing it", STOP_GRACE_SECONDS)
            process.kill()
            await process.wait()
        log.info("engine stopped")

    async def keep_running(self) -> int:
        """Restart the engine whenever it exits, with backoff if it keeps dying;
        returns the engine's status once it exits saying it cannot run."""
        backoff = 1.0
        while True:
            assert self.process is not None
            started = time.monotonic()
            code = await self.process.wait()
            if code in FINAL:
                log.error("engine exited with code %s and cannot run as set up; see its log above. Stopping", code)
                return code
            if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                backoff = 1.0
            log.error("engine exited with code %s; restarting in %.0fs", code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            await self.start()
            if await self.wait_ready(READY_TIMEOUT_SECONDS):
                log.info("engine ready again")


class _AdapterServer(uvicorn.Server):
    """uvicorn without its own signal handling: the supervisor owns SIGINT and
    SIGTERM, so that the engine is stopped after the adapter, in order."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _address_in_use(address: str) -> bool:
    host, port = split_host_port(address)
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


async def _serve(engine_settings: EngineSettings, adapter_settings: AdapterSettings) -> int:
    # Another engine answering there would pass our health check and serve in our place.
    if _address_in_use(engine_settings.engine_address):
        log.error(
            "%s is already in use (another Hearth running?); stop it or set --engine-address",
            engine_settings.engine_address,
        )
        return 1
    stopping = asyncio.Event()
    server = _AdapterServer(uvicorn_config(adapter_settings))

    def request_stop() -> None:
        log.info("stopping")
        stopping.set()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)

    engine = EngineProcess(engine_settings, adapter_settings.client_tls())
    await engine.start()
    try:
        ready = asyncio.create_task(engine.wait_ready(READY_TIMEOUT_SECONDS))
        stop_wait = asyncio.create_task(stopping.wait())
        await asyncio.wait({ready, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if stopping.is_set():
            ready.cancel()
            return 0
        if not ready.result():
            log.error("the engine did not start; see its log above")
            code = engine.process.returncode if engine.process is not None else None
            return code if code in FINAL else 1
        log.info("engine ready on %s", engine_settings.engine_address)
        monitor = asyncio.create_task(engine.keep_running())
        # An engine that cannot run any more stops the adapter too.
        monitor.add_done_callback(lambda _: setattr(server, "should_exit", True))
        try:
            await server.serve()
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
        if monitor.done() and not monitor.cancelled() and monitor.exception() is None:
            return monitor.result()
        return 0 if server.started or stopping.is_set() else 1
    finally:
        await engine.stop()


def _link_over_tls(server_tls: ServerTls, adapter_settings: AdapterSettings) -> None:
    """The adapter reaches an engine that serves TLS over TLS: trusting the engine's own
    certificate unless told which CA to trust, and with a client certificate where it needs one."""
    if adapter_settings.client_tls() is None:
        adapter_settings.engine_tls_ca = server_tls.cert
    if server_tls.client_ca is not None and adapter_settings.engine_tls_cert is None:
        raise TlsSetupError(
            "the engine requires client certificates (tls_client_ca): give the adapter one with "
            "LLM_ENGINE_TLS_CERT and LLM_ENGINE_TLS_KEY"
        )


def serve(engine_settings: EngineSettings, adapter_settings: AdapterSettings) -> int:
    # The two halves must agree on where the engine is, on the key, and on remote access.
    adapter_settings.engine_address = engine_settings.engine_address
    api_key = normalized_key(adapter_settings.api_key) or normalized_key(engine_settings.api_key)
    adapter_settings.api_key = engine_settings.api_key = api_key
    allow_remote = adapter_settings.allow_remote or engine_settings.allow_remote
    adapter_settings.allow_remote = engine_settings.allow_remote = allow_remote
    server_tls = engine_settings.server_tls()
    try:
        check_adapter_bind(adapter_settings)
        check_engine_bind(
            address_host(engine_settings.engine_address),
            api_key=api_key,
            tls=server_tls is not None,
            insecure_remote=engine_settings.insecure_remote,
        )
        if server_tls is not None:
            _link_over_tls(server_tls, adapter_settings)
            server_tls.credentials()
        check_engine_link(adapter_settings)
    except (UnsafeBind, TlsSetupError) as exc:
        log.error("%s", exc)
        return 2
    log.info(
        "Hearth: OpenAI API on http://%s:%d/v1, engine on %s, models in %s",
        adapter_settings.server_host,
        adapter_settings.server_port,
        engine_settings.engine_address,
        engine_settings.models_dir,
    )
    return asyncio.run(_serve(engine_settings, adapter_settings))
