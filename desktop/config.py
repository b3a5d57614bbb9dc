"""What the window needs to know at start: where the engine and the REST
adapter are, which API key to send, and how to start a server if none answers.
Built from the same settings `hearth serve` uses, so both agree."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from hearth.paths import APP_NAME
from hearth.settings.adapter import AdapterSettings
from hearth.settings.engine import EngineSettings
from hearth.settings.file import read_settings_object
from hearth.tls import ClientTls


@dataclass(frozen=True)
class DesktopConfig:
    engine_address: str
    rest_url: str
    models_dir: Path
    config_file: Path
    api_key: str = ""
    # TLS to the engine (LLM_ENGINE_TLS_*), None for plaintext.
    engine_tls: ClientTls | None = None
    # Start `hearth serve` in the background when no engine answers.
    start_server: bool = True
    serve_command: tuple[str, ...] = ()
    server_log: Path = field(default_factory=lambda: Path(platformdirs.user_log_dir(APP_NAME)) / "desktop-serve.log")


def rest_url(adapter: AdapterSettings) -> str:
    """Where a client reaches the adapter: a wildcard bind address is reached on loopback."""
    host = adapter.server_host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{adapter.server_port}"


def resolve_api_key(engine: EngineSettings, adapter: AdapterSettings, config_file: Path) -> str:
    """The key the server expects: a settings field where the classes have one, else
    LLM_API_KEY, else the config file's "settings" object."""
    for settings in (engine, adapter):
        key = getattr(settings, "api_key", None)
        if key:
            return key.get_secret_value() if hasattr(key, "get_secret_value") else str(key)
    if os.environ.get("LLM_API_KEY"):
        return os.environ["LLM_API_KEY"]
    key = read_settings_object(config_file).get("api_key")
    return key if isinstance(key, str) else ""


def desktop_config(
    engine: EngineSettings,
    adapter: AdapterSettings,
    *,
    serve_flags: tuple[str, ...] = (),
    start_server: bool = True,
) -> DesktopConfig:
    """``serve_flags``: the flags given to `hearth desktop`, passed on to the server it
    starts. Only those: what the Settings panel saves in the config file must still
    apply when the window restarts the server."""
    return DesktopConfig(
        engine_address=engine.engine_address,
        rest_url=rest_url(adapter),
        models_dir=engine.models_dir,
        config_file=engine.config_file,
        api_key=resolve_api_key(engine, adapter, engine.config_file),
        engine_tls=engine.client_tls(),
        start_server=start_server,
        serve_command=(sys.executable, "-m", "hearth", "serve", *serve_flags),
    )
