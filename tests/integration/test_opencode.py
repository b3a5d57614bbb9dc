"""OpenCode (the coding agent, `opencode run`) with Hearth configured as an
OpenAI-compatible provider, as the README tells a user to set it up. OpenCode
sends a ~7,500-token system prompt with its tools on every streamed request;
the run must end cleanly. A recording proxy between the two shows what OpenCode
sent, so that the test knows it exercised tools and streaming.

OpenCode runs fully isolated: its home, XDG folders and temp folder are the
test's, its project is an empty temp folder, and it reaches no registry."""

import json
import os
import platform
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.helpers.models import DEFAULT_MODEL_ID

NODE_MODULES = Path(__file__).resolve().parents[1] / "node" / "node_modules"
OPENCODE = NODE_MODULES / "opencode-linux-x64" / "bin" / "opencode"
# OpenCode's small model writes the session title; both run on Hearth.
MAX_OUTPUT_TOKENS = 64
# Tools that would reach past the temp project (commands, the network, sub-agents) are denied:
# a small base model may call anything it is offered.
DENIED_TOOLS = ("bash", "webfetch", "websearch", "codesearch", "task", "external_directory")


def _linux_x64_with_avx2() -> bool:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    return re.search(r"\bavx2\b", Path("/proc/cpuinfo").read_text()) is not None


pytestmark = pytest.mark.skipif(
    not _linux_x64_with_avx2(),
    reason="tests/node/package.json installs OpenCode's Linux x64 build, which needs AVX2",
)


# Headers that belong to one connection: the proxy sets its own.
_REQUEST_HOP_HEADERS = frozenset({"host", "content-length", "connection"})
# The answer is re-sent in chunks as read, undecoded (iter_raw).
_ANSWER_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class RecordingProxy:
    """A reverse proxy on a free loopback port that forwards every request to
    ``upstream`` unchanged, streams the answer back as it arrives (SSE
    included), and keeps each request's path, JSON body and answer status."""

    def __init__(self, upstream: str):
        self.requests: list[dict] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self._forward()

            def do_POST(self):
                self._forward()

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": self.path, "body": json.loads(body) if body else None}
                proxy.requests.append(record)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _REQUEST_HOP_HEADERS}
                with httpx.Client(timeout=httpx.Timeout(600, connect=10), trust_env=False) as client:
                    with client.stream(self.command, upstream + self.path, headers=headers, content=body) as answer:
                        record["status"] = answer.status_code
                        self.send_response(answer.status_code)
                        for key, value in answer.headers.items():
                            if key.lower() not in _ANSWER_HOP_HEADERS:
                                self.send_header(key, value)
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in answer.iter_raw():
                            if not chunk:
                                continue  # an empty chunk would end the chunked body early
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format, *args):  # noqa: A002 - the base class's signature
                pass  # the test reads self.requests; no stderr noise

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/chat/completions"]


def opencode_config(base_url: str) -> dict:
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "hearth": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Hearth (local)",
                "options": {"baseURL": f"{base_url}/v1"},
                "models": {
                    DEFAULT_MODEL_ID: {
                        "name": "Gemma 3 270M",
                        "limit": {"context": 8192, "output": MAX_OUTPUT_TOKENS},
                    }
                },
            }
        },
        "model": f"hearth/{DEFAULT_MODEL_ID}",
        "small_model": f"hearth/{DEFAULT_MODEL_ID}",
        "permission": {tool: "deny" for tool in DENIED_TOOLS},
        "autoupdate": False,
        "share": "disabled",
    }


def isolated_environment(root: Path) -> dict[str, str]:
    """OpenCode's environment: every folder it reads or writes is under ``root``."""
    folders = {name: root / name for name in ("home", "config", "data", "cache", "state", "tmp")}
    for folder in folders.values():
        folder.mkdir()
    # OpenCode installs its plugin API into a config folder that has no node_modules
    # (from npm, at run time). `make node-deps` installed it at OpenCode's version:
    # link that in, and list it in the folder's lock file as OpenCode checks.
    config = folders["config"] / "opencode"
    (config / "node_modules" / "@opencode-ai").mkdir(parents=True)
    (config / "node_modules" / "@opencode-ai" / "plugin").symlink_to(NODE_MODULES / "@opencode-ai" / "plugin")
    shutil.copy(NODE_MODULES.parent / "package-lock.json", config / "package-lock.json")
    return {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "HOME": str(folders["home"]),
        "XDG_CONFIG_HOME": str(folders["config"]),
        "XDG_DATA_HOME": str(folders["data"]),
        "XDG_CACHE_HOME": str(folders["cache"]),
        "XDG_STATE_HOME": str(folders["state"]),
        "TMPDIR": str(folders["tmp"]),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        # Offline and non-interactive: no models.dev catalogue, no self-update, no
        # language-server or plugin downloads, no Claude Code files from a home folder.
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_CLAUDE_CODE": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        # Anything that still asks npm gets a closed loopback port, not the internet.
        "npm_config_registry": "http://127.0.0.1:9/",
    }


def http_requests_total(base_url: str, route: str, status: str) -> float:
    metrics = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = rf'^hearth_http_requests_total\{{method="POST",route="{re.escape(route)}",status="{status}"\}} (\S+)$'
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_opencode_runs_against_hearth(server, tmp_path):
    assert OPENCODE.is_file(), "run `make node-deps`"
    project = tmp_path / "project"
    project.mkdir()
    env = isolated_environment(tmp_path)
    answered_before = http_requests_total(server.base_url, "/v1/chat/completions", "200")

    with RecordingProxy(server.base_url) as proxy:
        (project / "opencode.json").write_text(json.dumps(opencode_config(proxy.base_url), indent=2))
        # `opencode run` takes its project from the working directory ($PWD).
        env["PWD"] = str(project)
        result = subprocess.run(
            [str(OPENCODE), "run", "--format", "json", "--print-logs", "--log-level", "WARN", "Say hello."],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            # A 7,500-token prompt is read in several seconds to a minute on 2 CPU cores.
            timeout=420,
        )
    diagnosis = f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}\nhearth:\n{server.log()[-3000:]}"
    assert result.returncode == 0, diagnosis

    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events, diagnosis
    assert not [e for e in events if e.get("type") == "error"], diagnosis
    # Each agent step ended the way a stream ends, with the usage Hearth reported in it.
    steps = [e["part"] for e in events if e.get("type") == "step_finish"]
    assert steps, diagnosis
    for step in steps:
        assert step["reason"] in ("stop", "length", "tool-calls"), step
        assert step["tokens"]["input"] > 0 and 0 < step["tokens"]["output"] <= MAX_OUTPUT_TOKENS, step

    chats = proxy.chat_requests()
    assert chats, "OpenCode sent no chat completion to Hearth"
    assert all(r["status"] == 200 for r in chats), [(r["status"], r["body"].get("stream")) for r in chats]
    assert all(r["body"]["model"] == DEFAULT_MODEL_ID for r in chats)
    agent_turns = [r["body"] for r in chats if r["body"].get("tools")]
    assert agent_turns, "no request carried OpenCode's tools"
    for body in agent_turns:
        assert body["stream"] is True
        names = [tool["function"]["name"] for tool in body["tools"]]
        assert all(tool["type"] == "function" for tool in body["tools"])
        assert "read" in names, names
        assert not set(names) & set(DENIED_TOOLS), names
        assert body["max_tokens"] <= MAX_OUTPUT_TOKENS

    # Hearth counted every one of them as answered.
    answered = http_requests_total(server.base_url, "/v1/chat/completions", "200") - answered_before
    assert answered >= len(chats)
