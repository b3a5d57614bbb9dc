"""The models folder's lock: copy, delete and installs (a pull's final rename,
the desktop's add-file) racing each other leave the folder and the config file
consistent, every time; and the lock holds between processes."""

import json
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from hearth.engine.errors import AlreadyExists, ModelNotFound
from hearth.engine.models.registry import ModelRegistry
from hearth.engine.models.store import copy_model, delete_model
from hearth.models_folder import folder_lock, move_into_place
from tests.helpers.gguf_factory import write_tiny_llama

ROUNDS = 40


def run_together(*jobs) -> list:
    """Runs the jobs on threads released at the same instant; their results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index: int, job) -> None:
        barrier.wait()
        try:
            results[index] = job()
        except Exception as exc:  # the outcome under test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def config_entries(config: Path) -> list[dict]:
    return json.loads(config.read_text())["models"] if config.exists() else []


def assert_consistent(models: Path, config: Path, registry: ModelRegistry) -> None:
    for entry in config_entries(config):
        assert Path(entry["path"]).is_file(), f"{entry['id']} points at a missing file"
    for record in registry.scan().values():
        assert record.path.is_file() and record.invalid_reason is None, record
    assert not list(models.glob("*.partial"))


def install(source: Path, target: Path) -> str:
    """A pull's or the desktop's final step: a whole file under its name, never over another."""
    partial = target.with_name(f".{target.name}.{threading.get_ident()}.partial")
    shutil.copyfile(source, partial)
    try:
        with folder_lock(target.parent):
            move_into_place(partial, target)
        return "installed"
    finally:
        partial.unlink(missing_ok=True)


@pytest.fixture
def folder(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    template = write_tiny_llama(tmp_path / "template.gguf")
    other = write_tiny_llama(tmp_path / "other.gguf", seed=1)
    config = tmp_path / "config.json"
    return models, config, ModelRegistry(models, config, 4096), template, other


def test_copy_and_delete_racing_never_leave_a_dangling_alias(folder):
    models, config, registry, template, _ = folder
    outcomes: Counter = Counter()
    for round_ in range(ROUNDS):
        source, alias = f"a{round_}", f"b{round_}"
        shutil.copyfile(template, models / f"{source}.gguf")
        copied, deleted = run_together(
            lambda: copy_model(registry, source, alias), lambda: delete_model(registry, source)
        )
        assert not isinstance(deleted, Exception), deleted
        ids = set(registry.scan())
        assert source not in ids
        if isinstance(copied, ModelNotFound):
            # The delete went first: nothing of the source is left, and no alias was made.
            assert alias not in ids and not list(models.glob(f"*{source}*.gguf"))
            outcomes["delete first"] += 1
        else:
            assert copied is None, copied
            # The copy went first: the delete kept the file, hidden, for the alias.
            assert registry.get(alias).path == models / f".{source}.gguf"
            outcomes["copy first"] += 1
        assert_consistent(models, config, registry)
    assert sum(outcomes.values()) == ROUNDS


def test_installs_racing_each_other_and_a_delete_never_overwrite_or_lose_a_file(folder):
    models, config, registry, template, other = folder
    for round_ in range(ROUNDS):
        name = f"m{round_}"
        target = models / f"{name}.gguf"
        results = run_together(
            lambda: install(template, target), lambda: install(other, target), lambda: delete_model(registry, name)
        )
        installed = [source for source, r in zip((template, other), results) if r == "installed"]
        refused = [r for r in results[:2] if isinstance(r, FileExistsError)]
        assert len(installed) + len(refused) == 2, results
        if isinstance(results[2], ModelNotFound):
            # The delete came before both installs: one won, the other was refused, not written over it.
            assert len(installed) == 1 and target.read_bytes() == installed[0].read_bytes()
        else:
            assert results[2] == target
            if len(installed) == 2:
                # The second install came after the delete: its file is there, whole.
                assert target.read_bytes() in (template.read_bytes(), other.read_bytes())
            else:
                assert not target.exists()
        assert_consistent(models, config, registry)


def test_a_copy_racing_a_copy_to_the_same_name_makes_one_alias(folder):
    models, config, registry, template, _ = folder
    for round_ in range(ROUNDS):
        shutil.copyfile(template, models / f"s{round_}.gguf")
        results = run_together(*[lambda: copy_model(registry, f"s{round_}", f"same{round_}")] * 3)
        assert sum(isinstance(r, AlreadyExists) for r in results) == 2 and results.count(None) == 1, results
        assert [e["id"] for e in config_entries(config)].count(f"same{round_}") == 1
    assert_consistent(models, config, registry)


def test_the_lock_holds_between_processes(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from hearth.models_folder import folder_lock\n"
            "with folder_lock(Path(sys.argv[1])):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(1.0)\n"
            "    print('released', time.time(), flush=True)\n",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with folder_lock(tmp_path):
            acquired = time.time()
        released = float(holder.stdout.readline().split()[1])
    finally:
        holder.wait(10)
    assert acquired >= released
    # The models folder itself is left as it was.
    assert list(tmp_path.iterdir()) == []
