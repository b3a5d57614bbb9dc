"""Builds and runs the engine's gRPC server: Engine service, health, reflection."""

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hearth.auth import UnsafeBind, address_host, check_engine_bind, normalized_key

# Both ends of the wire agree on the largest message.
from hearth.client.channel import MAX_MESSAGE_BYTES
from hearth.engine.core import EngineCore
from hearth.engine.llama.backend import BackendUnavailable, backend_info
from hearth.engine.llama.cpu_check import check_build_runs_here
from hearth.engine.rpc.interceptors import ApiKeyInterceptor, ErrorMappingInterceptor
from hearth.engine.rpc.servicer import EngineServicer
from hearth.engine.templates.chat_template import shutdown_renderers
from hearth.engine.v1 import engine_pb2, engine_pb2_grpc
from hearth.exit_codes import BAD_SETTINGS, CANNOT_RUN_HERE
from hearth.settings.engine import EngineSettings
from hearth.tls import TlsSetupError

log = logging.getLogger(__name__)

SERVICE_NAME = engine_pb2.DESCRIPTOR.services_by_name["Engine"].full_name


async def serve(settings: EngineSettings) -> None:
    api_key = normalized_key(settings.api_key)
    tls = settings.server_tls()
    try:
        check_engine_bind(
            address_host(settings.engine_address),
            api_key=api_key,
            tls=tls is not None,
            insecure_remote=settings.insecure_remote,
        )
        credentials = tls.credentials() if tls is not None else None
    except (UnsafeBind, TlsSetupError) as exc:
        log.error("%s", exc)
        raise SystemExit(BAD_SETTINGS) from None
    # In a throwaway process first: a build for another CPU may die as soon as its backend is loaded here.
    cannot_run = await asyncio.to_thread(check_build_runs_here)
    if cannot_run is not None:
        log.error("%s", cannot_run)
        raise SystemExit(CANNOT_RUN_HERE)
    try:
        backend = backend_info()
    except BackendUnavailable as exc:
        log.error("%s", exc)
        raise SystemExit(CANNOT_RUN_HERE) from None
    core = EngineCore(settings, backend)
    await core.start()
    # The key check comes first: a call without it reaches nothing else.
    interceptors: list[grpc.aio.ServerInterceptor] = [ApiKeyInterceptor(api_key)] if api_key else []
    interceptors.append(ErrorMappingInterceptor())
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    engine_pb2_grpc.add_EngineServicer_to_server(EngineServicer(core), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        if credentials is None:
            server.add_insecure_port(settings.engine_address)
        else:
            server.add_secure_port(settings.engine_address, credentials)
    except RuntimeError:
        log.error("cannot listen on %s: the address is in use or invalid", settings.engine_address)
        await core.stop()
        shutdown_renderers()
        raise SystemExit(BAD_SETTINGS) from None
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "engine listening on %s%s (backend %s, gpu offload %s, models in %s)",
        settings.engine_address,
        "" if tls is None else " with TLS" + (", client certificates required" if tls.client_ca else ""),
        backend.backend.value,
        core.gpu_offload,
        settings.models_dir,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("engine shutting down")
    await health_servicer.enter_graceful_shutdown()
    # Watchers would hold the grace period below to its end.
    core.events.close()
    core.logs.close()
    # Streams in flight get a few seconds to finish, then are cancelled.
    await server.stop(grace=5.0)
    await core.stop()
    shutdown_renderers()
