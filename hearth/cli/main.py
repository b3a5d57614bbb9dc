"""The `hearth` command."""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from hearth.logs import configure_logging

log = logging.getLogger("hearth")


def _overrides(args: argparse.Namespace, *names: str) -> dict:
    """Flags given on the command line; unset flags leave LLM_* variables in charge."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", type=Path, help="folder of *.gguf models (LLM_MODELS_DIR)")
    parser.add_argument("--engine-address", help="engine gRPC host:port (LLM_ENGINE_ADDRESS)")


def _add_adapter_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="REST bind address (LLM_SERVER_HOST), default 127.0.0.1")
    parser.add_argument("--port", type=int, help="REST port (LLM_SERVER_PORT), default 11434")


def _add_allow_remote_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        default=None,
        help="allow listening on a non-loopback address without an API key (LLM_ALLOW_REMOTE)",
    )


def _add_insecure_remote_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-remote",
        action="store_true",
        default=None,
        help="allow a non-loopback engine address without TLS; it still needs an API key (LLM_INSECURE_REMOTE)",
    )


def _engine_settings(args: argparse.Namespace):
    from hearth.settings.engine import EngineSettings

    return EngineSettings(**_overrides(args, "models_dir", "engine_address", "allow_remote", "insecure_remote"))


def _adapter_settings(args: argparse.Namespace):
    from hearth.settings.adapter import AdapterSettings

    overrides = _overrides(args, "engine_address", "allow_remote")
    if getattr(args, "host", None) is not None:
        overrides["server_host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["server_port"] = args.port
    return AdapterSettings(**overrides)


def cmd_engine(args: argparse.Namespace) -> int:
    from hearth.engine.rpc.server import serve

    configure_logging("engine")
    asyncio.run(serve(_engine_settings(args)))
    return 0


def cmd_adapter(args: argparse.Namespace) -> int:
    from hearth.adapter.server import run_adapter

    configure_logging("adapter")
    return run_adapter(_adapter_settings(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from hearth.cli.supervisor import serve

    configure_logging("serve")
    return serve(_engine_settings(args), _adapter_settings(args))


def cmd_models(args: argparse.Namespace) -> int:
    from hearth.cli.listing import print_models

    configure_logging("cli")
    return print_models(_engine_settings(args), as_json=args.json, ids_only=args.quiet)


def cmd_run(args: argparse.Namespace) -> int:
    from hearth.cli.chat import run_chat

    configure_logging("cli")
    prompt = " ".join(args.prompt) if args.prompt else None
    return run_chat(_engine_settings(args), args.model, prompt)


def cmd_ps(args: argparse.Namespace) -> int:
    from hearth.cli.running import print_running

    configure_logging("cli")
    return print_running(_engine_settings(args), as_json=args.json)


def cmd_stop(args: argparse.Namespace) -> int:
    from hearth.cli.running import stop_model

    configure_logging("cli")
    return stop_model(_engine_settings(args), args.model)


def cmd_show(args: argparse.Namespace) -> int:
    from hearth.cli.running import show_model

    configure_logging("cli")
    return show_model(_engine_settings(args), args.model, as_json=args.json)


def cmd_quantize(args: argparse.Namespace) -> int:
    from hearth.cli.quantize import quantize_model

    configure_logging("cli")
    settings = _engine_settings(args)
    return quantize_model(settings, args.model, args.type, args.new_id, allow_requantize=args.allow_requantize)


def cmd_completion(args: argparse.Namespace) -> int:
    from hearth.cli.completion import script

    print(script(args.shell, sorted(args.commands)))
    return 0


def cmd_pull_default(args: argparse.Namespace) -> int:
    from hearth.default_model import install_default_model

    configure_logging("cli")
    settings = _engine_settings(args)
    path = install_default_model(settings.models_dir, only_if_empty=args.if_missing)
    if path is not None:
        print(path)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from hearth.cli.model_commands import pull_model

    configure_logging("cli")
    return pull_model(_engine_settings(args), args.reference, args.revision)


def cmd_rm(args: argparse.Namespace) -> int:
    from hearth.cli.model_commands import delete_model

    configure_logging("cli")
    return delete_model(_engine_settings(args), args.id)


def cmd_cp(args: argparse.Namespace) -> int:
    from hearth.cli.model_commands import copy_model

    configure_logging("cli")
    return copy_model(_engine_settings(args), args.source, args.destination)


def cmd_desktop(args: argparse.Namespace) -> int:
    configure_logging("desktop")
    import importlib.util

    if importlib.util.find_spec("dearpygui") is None:
        log.error("the desktop window needs Dear PyGui: pip install 'hearth-llm[desktop]' (or `make desktop`)")
        return 1
    from hearth.desktop.config import desktop_config
    from hearth.desktop.settings_form import current_values
    from hearth.desktop.window import run_desktop

    # Flags given here are passed on to the `hearth serve` the window may start.
    serve_flags: list[str] = []
    for flag, value in (
        ("--engine-address", args.engine_address),
        ("--models-dir", args.models_dir),
        ("--host", args.host),
        ("--port", args.port),
    ):
        if value is not None:
            serve_flags += [flag, str(value)]

    def load_config():
        return desktop_config(
            _engine_settings(args),
            _adapter_settings(args),
            serve_flags=tuple(serve_flags),
            start_server=not args.no_start_server,
        )

    config = load_config()
    values = current_values(_engine_settings(args), _adapter_settings(args), config.api_key)
    return run_desktop(config, values, reload_config=load_config, driver_factory=args.desktop_driver)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="Local LLM server with an OpenAI-compatible API.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the engine and the OpenAI REST adapter together")
    _add_adapter_flags(serve)
    _add_engine_flags(serve)
    _add_allow_remote_flag(serve)
    _add_insecure_remote_flag(serve)
    serve.set_defaults(func=cmd_serve)

    engine = commands.add_parser("engine", help="run the gRPC engine alone")
    _add_engine_flags(engine)
    _add_allow_remote_flag(engine)
    _add_insecure_remote_flag(engine)
    engine.set_defaults(func=cmd_engine)

    adapter = commands.add_parser("adapter", help="run the OpenAI REST adapter alone")
    _add_adapter_flags(adapter)
    adapter.add_argument("--engine-address", help="engine gRPC host:port (LLM_ENGINE_ADDRESS)")
    _add_allow_remote_flag(adapter)
    adapter.set_defaults(func=cmd_adapter)

    models = commands.add_parser("models", aliases=["list", "ls"], help="list models and their state")
    _add_engine_flags(models)
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument("-q", "--quiet", action="store_true", help="print only the model ids")
    models.set_defaults(func=cmd_models)

    run = commands.add_parser(
        "run",
        help="chat with a model in the terminal (one answer when PROMPT is given or text is piped in)",
        description="Talks to the running engine. In the session: /? for help, /bye to exit, Ctrl-C stops "
        'an answer, """ begins and ends a message of several lines.',
    )
    run.add_argument("model", help="model id")
    run.add_argument("prompt", nargs="*", help="ask this, print the answer and exit")
    _add_engine_flags(run)
    run.set_defaults(func=cmd_run)

    ps = commands.add_parser("ps", help="list the models the engine has loaded")
    _add_engine_flags(ps)
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.set_defaults(func=cmd_ps)

    stop = commands.add_parser("stop", help="unload a model")
    stop.add_argument("model", help="model id")
    _add_engine_flags(stop)
    stop.set_defaults(func=cmd_stop)

    show = commands.add_parser("show", help="show a model's details and capabilities")
    show.add_argument("model", help="model id")
    _add_engine_flags(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_show)

    quantize = commands.add_parser(
        "quantize",
        help="make a quantized copy of a model in the models folder (llama.cpp's quantizer)",
        description="Writes a new model beside the source and never replaces it. Types: F16, BF16, Q8_0, Q6_K, "
        "Q5_K_M, Q5_K_S, Q5_1, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_L, Q3_K_M, Q3_K_S, Q2_K.",
    )
    quantize.add_argument("model", help="model id of the source (best an F16/F32/BF16 one)")
    quantize.add_argument("--type", required=True, help="e.g. Q4_K_M")
    quantize.add_argument("--as", dest="new_id", help="id of the new model (default: the source's with the type)")
    quantize.add_argument("--allow-requantize", action="store_true", help="quantize a model that is quantized already")
    _add_engine_flags(quantize)
    quantize.set_defaults(func=cmd_quantize)

    completion = commands.add_parser("completion", help="print a shell completion script (bash or zsh)")
    completion.add_argument("shell", choices=["bash", "zsh"])
    completion.set_defaults(func=cmd_completion)

    pull = commands.add_parser("pull-default", help="install the default model (Gemma 3 270M Q4_K_M)")
    pull.add_argument("--models-dir", type=Path, help="folder of *.gguf models (LLM_MODELS_DIR)")
    pull.add_argument(
        "--if-missing", action="store_true", help="do nothing when the folder already holds a .gguf model"
    )
    pull.set_defaults(func=cmd_pull_default)

    hf_pull = commands.add_parser(
        "pull",
        help="download a GGUF model from Hugging Face into the models folder",
        description="REFERENCE is owner/name (its only GGUF file, or its Q4_K_M one), owner/name:QUANT "
        "or owner/name/FILE.gguf; an hf.co/ prefix is accepted. HF_TOKEN is used for private and gated "
        "repositories. Goes through the running engine when one answers, else writes the folder directly.",
    )
    hf_pull.add_argument("reference", help="e.g. Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M")
    hf_pull.add_argument("--revision", default="", help="branch, tag or commit (default: main)")
    _add_engine_flags(hf_pull)
    hf_pull.set_defaults(func=cmd_pull)

    rm = commands.add_parser("rm", help="delete a model (its file, or its config entry)")
    rm.add_argument("id", help="model id")
    _add_engine_flags(rm)
    rm.set_defaults(func=cmd_rm)

    cp = commands.add_parser("cp", help="give a model a second id (an alias in the config file)")
    cp.add_argument("source", help="existing model id")
    cp.add_argument("destination", help="new model id")
    _add_engine_flags(cp)
    cp.set_defaults(func=cmd_cp)

    desktop = commands.add_parser("desktop", help="open the desktop window (starts `hearth serve` if none runs)")
    _add_adapter_flags(desktop)
    _add_engine_flags(desktop)
    desktop.add_argument(
        "--no-start-server", action="store_true", help="do not start `hearth serve` when no engine answers"
    )
    desktop.set_defaults(func=cmd_desktop)
    # Every command's name (aliases too), for the completion script.
    parser.set_defaults(commands=tuple(commands.choices))
    return parser


def main(argv: list[str] | None = None, *, desktop_driver=None) -> int:
    """``desktop_driver``: what drives `hearth desktop`'s window (see
    hearth.desktop.window.DriverFactory); the end-to-end tests pass one."""
    args = build_parser().parse_args(argv)
    args.desktop_driver = desktop_driver
    from hearth.tls import TlsSetupError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except TlsSetupError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
