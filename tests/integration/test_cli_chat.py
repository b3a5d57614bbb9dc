"""`hearth run`, `ps`, `stop` and `show` as a user types them: the chat in a
real pseudo-terminal (its answer streamed by the instruct model, Ctrl-C
stopping an answer but not the session, /bye ending it), one answer for a
prompt or piped text, and clear errors when no engine runs. The model is
served greedy by its config entry (temperature 0), as a user would set a
model's defaults, so that one answer does not depend on a sampling draw."""

import json
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.helpers.instruct_model import install_instruct_model
from tests.helpers.models import INSTRUCT_MODEL_ID
from tests.helpers.servers import HearthServer, base_env, free_port

REPO = Path(__file__).resolve().parents[2]

HEARTH = [sys.executable, "-m", "hearth"]


@pytest.fixture(scope="module")
def greedy_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-chat-server")
    (folder / "models").mkdir()
    path = install_instruct_model(REPO / ".cache" / "models")
    entry = {"id": INSTRUCT_MODEL_ID, "path": str(path), "parameters": {"temperature": 0}}
    (folder / "config.json").write_text(json.dumps({"models": [entry]}))
    server = HearthServer(folder / "models", folder / "config.json", folder / "serve.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def env(greedy_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-chat")
    environment = base_env(folder / "models", folder / "config.json")
    environment["LLM_ENGINE_ADDRESS"] = greedy_server.engine_address
    return environment


def hearth(args: list[str], env: dict, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    kwargs = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(HEARTH + args, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def spawn(env: dict) -> pexpect.spawn:
    child = pexpect.spawn(HEARTH[0], [*HEARTH[1:], "run", INSTRUCT_MODEL_ID], env=env, encoding="utf-8", timeout=120)
    child.expect_exact("/bye to exit.")
    child.expect_exact(">>> ")
    return child


def test_the_chat_streams_answers_and_ctrl_c_stops_one_without_ending_the_session(env):
    child = spawn(env)
    child.sendline("/set parameter temperature 0")
    child.expect_exact("Set parameter 'temperature' to '0'.")
    child.expect_exact(">>> ")
    child.sendline("Count from 1 to 500, one number per line, and nothing else.")
    # The answer arrives piece by piece: part of it is on screen long before it could be finished.
    child.expect(r"\b5\b")
    child.sendintr()
    child.expect_exact(">>> ", timeout=30)
    # Left alone the model counts to 100 (about 4 s here): stopped at 5, it got nowhere near.
    assert "100" not in child.before
    child.sendline("What is the capital of France? Answer in one word.")
    child.expect_exact(">>> ")
    assert "Paris" in child.before
    # The conversation is remembered, and /clear forgets it.
    child.sendline("/clear")
    child.expect_exact("Cleared session context.")
    child.expect_exact(">>> ")
    child.sendline('"""Repeat these two words exactly:')
    child.expect_exact("... ")
    child.sendline('blue harbor"""')
    child.expect_exact(">>> ")
    assert "blue harbor" in child.before.lower()
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_and_unknown_commands_at_the_prompt_keep_the_session(env):
    child = spawn(env)
    child.sendintr()
    child.expect_exact("Use Ctrl + d or /bye to exit.")
    child.sendline("/set parameter temprature 0")
    child.expect_exact("Unknown parameter 'temprature'")
    child.sendline("/nope")
    child.expect_exact("Unknown command '/nope'")
    # Ollama's -1 for a random seed and no length limit; a value no field holds is refused, not a crash.
    child.sendline("/set parameter seed -1")
    child.expect_exact("Set parameter 'seed' to '-1' (a random seed).")
    child.sendline("/set parameter num_predict -1")
    child.expect_exact("(no limit)")
    child.sendline(f"/set parameter seed {2**70}")
    child.expect_exact(f"'{2**70}' is out of range for seed.")
    child.sendline("/show")
    child.expect_exact("max_tokens: no limit")
    child.sendline("What is the capital of France? Answer in one word.")
    child.expect_exact("Paris")
    child.expect_exact(">>> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_one_answer_for_a_prompt_or_piped_text(env):
    answered = hearth(["run", INSTRUCT_MODEL_ID, "What is the capital of France? Answer in one word."], env)
    assert answered.returncode == 0, answered.stderr
    assert "Paris" in answered.stdout
    piped = hearth(["run", INSTRUCT_MODEL_ID], env, stdin="What is the capital of Italy? Answer in one word.")
    assert piped.returncode == 0, piped.stderr
    assert "Rome" in piped.stdout
    # Nothing piped in and no prompt: as with Ollama the model is loaded and nothing is asked.
    empty = hearth(["run", INSTRUCT_MODEL_ID], env, stdin="")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "")


def test_ps_stop_and_show_against_the_running_engine(env):
    assert hearth(["run", INSTRUCT_MODEL_ID, "Say hi."], env).returncode == 0
    listed = hearth(["ps"], env)
    assert listed.returncode == 0, listed.stderr
    [header, row] = listed.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "SIZE"] and row.split()[0] == INSTRUCT_MODEL_ID
    assert "from now" in row
    [loaded] = json.loads(hearth(["ps", "--json"], env).stdout)
    assert loaded["id"] == INSTRUCT_MODEL_ID and int(loaded["memory_bytes"]) > 0
    assert hearth(["stop", INSTRUCT_MODEL_ID], env).returncode == 0
    assert hearth(["ps", "--json"], env).stdout.strip() == "[]"
    shown = hearth(["show", INSTRUCT_MODEL_ID], env)
    assert shown.returncode == 0, shown.stderr
    assert "qwen2" in shown.stdout and "Q4_K_M" in shown.stdout and "    tools" in shown.stdout
    details = json.loads(hearth(["show", INSTRUCT_MODEL_ID, "--json"], env).stdout)
    assert details["id"] == INSTRUCT_MODEL_ID and "CAPABILITY_TOOLS" in details["capabilities"]
    assert hearth(["list", "-q"], env).stdout.split() == [INSTRUCT_MODEL_ID]
    for command in (["show", "nope"], ["stop", "nope"], ["run", "nope", "hi"]):
        missing = hearth(command, env)
        assert missing.returncode == 1 and "nope" in missing.stderr, command


def test_without_an_engine_each_command_says_so(env):
    elsewhere = {**env, "LLM_ENGINE_ADDRESS": f"127.0.0.1:{free_port()}"}
    for command in (["run", INSTRUCT_MODEL_ID, "hi"], ["ps"], ["stop", INSTRUCT_MODEL_ID]):
        result = hearth(command, elsewhere, timeout=60)
        assert result.returncode == 1, command
        assert "no engine answers" in result.stderr and "hearth serve" in result.stderr, command


def test_the_completion_script_offers_commands_and_models(env):
    script = hearth(["completion", "bash"], env).stdout
    assert "complete -F _hearth_complete hearth" in script and " run " in script
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
