"""Claude Code (`claude -p`, installed from npm by `make test`) pointed at
Hearth with ANTHROPIC_BASE_URL, as the README tells a user to: its first
request is an agent-sized prompt (about 11,600 tokens: its system prompt, a
system message and its tools) on the Messages API, and the run must end with
``is_error: false``. Claude Code runs isolated: a fresh HOME and project
folder, telemetry, updates and non-essential traffic off."""

import json
import re
import subprocess
from pathlib import Path

from tests.helpers.models import INSTRUCT_MODEL_ID
from tests.helpers.servers import HearthServer

CLAUDE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin" / "claude"


def claude_environment(home: Path, server: HearthServer) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "ANTHROPIC_BASE_URL": server.base_url,
        "ANTHROPIC_API_KEY": "unused",
        "ANTHROPIC_MODEL": INSTRUCT_MODEL_ID,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": INSTRUCT_MODEL_ID,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": INSTRUCT_MODEL_ID,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": INSTRUCT_MODEL_ID,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def test_claude_code_answers_through_the_messages_api(agent_server, tmp_path):
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    done = subprocess.run(
        [str(CLAUDE), "-p", "Reply with the single word: ready", "--output-format", "json"],
        cwd=project,
        env=claude_environment(home, agent_server),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(done.stdout)
    assert result["is_error"] is False, result
    assert result["subtype"] == "success" and result["result"].strip()
    # It sent an agent-sized prompt, and every call it made was answered.
    assert result["usage"]["input_tokens"] + result["usage"]["cache_read_input_tokens"] > 5000
    calls = re.findall(r"POST (/v1/messages\S*) (\d{3})", agent_server.log())
    assert calls and all(status == "200" for _, status in calls), calls
