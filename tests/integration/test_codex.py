"""Codex CLI (`codex exec`, installed from npm by `make test`) with Hearth as
a custom provider on the Responses API (`wire_api = "responses"` in
`$CODEX_HOME/config.toml`), as the README tells a user to set it up. Its
request carries a ~6,000-token prompt, tools of several kinds (function,
custom, web search), `store: false`, `include` and `reasoning`; the run must
print no ERROR line and leave a last message. Codex runs isolated: a fresh
HOME and CODEX_HOME, analytics off, a project folder of its own."""

import re
import subprocess
from pathlib import Path

from tests.helpers.models import INSTRUCT_MODEL_ID
from tests.helpers.servers import HearthServer

CODEX = Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin" / "codex"


def codex_config(server: HearthServer) -> str:
    return f"""model = "{INSTRUCT_MODEL_ID}"
model_provider = "hearth"

[model_providers.hearth]
name = "Hearth"
base_url = "{server.base_url}/v1"
wire_api = "responses"

[analytics]
enabled = false
"""


def test_codex_exec_answers_through_the_responses_api(agent_server, tmp_path):
    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".codex").mkdir(parents=True)
    project.mkdir()
    (home / ".codex" / "config.toml").write_text(codex_config(agent_server))
    last = tmp_path / "last.txt"
    done = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "-o", str(last), "Reply with the single word: ready"],
        cwd=project,
        env={
            "HOME": str(home),
            "CODEX_HOME": str(home / ".codex"),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "NO_PROXY": "127.0.0.1,localhost",
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert not re.search(r"^ERROR", output, re.MULTILINE), output[-3000:]
    assert last.read_text().strip()
    calls = re.findall(r"POST (/v1/responses\S*) (\d{3})", agent_server.log())
    assert calls and all(status == "200" for _, status in calls), calls
