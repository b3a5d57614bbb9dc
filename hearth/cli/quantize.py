"""`hearth quantize MODEL --type Q4_K_M [--as NEW_ID]`: a new model beside
the source in the models folder, made by llama.cpp's own quantizer with a
progress bar; the source is never replaced, and a type the source cannot
become is refused before anything is written. Ctrl-C stops it and leaves
nothing behind."""

import re
import subprocess
import sys
from collections import deque
from pathlib import Path

from tqdm import tqdm

from hearth.cli.running import find_model, model_or_failure
from hearth.client import EngineCallError
from hearth.engine.errors import EngineError
from hearth.engine.models.config import MODEL_ID_MAX_LENGTH
from hearth.engine.models.gguf_info import GGUFReadError, read_gguf_info
from hearth.engine.models.quantize import PROGRESS, check_quantize
from hearth.models_folder import folder_lock, move_into_place
from hearth.settings.engine import EngineSettings

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
# A file name of its own: one segment of a model id.
_FILE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def new_model_id(source_id: str, source_type: str, target_type: str) -> str:
    """ "name-f16" as Q4_K_M becomes "name-q4_k_m"; a pulled model's id keeps its last segment."""
    base = source_id.rsplit("/", 1)[-1].split(":", 1)[0]
    base = base.removesuffix(f"-{source_type.lower()}").removesuffix(f".{source_type.lower()}")
    return f"{base}-{target_type.lower()}"


def _run_quantizer(source: Path, partial: Path, type_name: str, allow_requantize: bool) -> int:
    command = [sys.executable, "-m", "hearth.engine.models.quantize", str(source), str(partial), type_name]
    if allow_requantize:
        command.append("--allow-requantize")
    log: deque[str] = deque(maxlen=20)
    bar = tqdm(total=None, unit="tensor", desc=f"quantizing to {type_name}", file=sys.stderr)
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        assert child.stderr is not None
        for line in child.stderr:
            progress = PROGRESS.match(line)
            if progress is None:
                log.append(line.rstrip())
                continue
            bar.total = int(progress.group(2))
            bar.update(int(progress.group(1)) - bar.n)
        status = child.wait()
    except KeyboardInterrupt:
        child.kill()
        child.wait()
        raise
    finally:
        bar.close()
    if status != 0:
        print("\n".join(line for line in log if line), file=sys.stderr)
    return status


def quantize_model(
    settings: EngineSettings, model_id: str, type_name: str, new_id: str | None, *, allow_requantize: bool
) -> int:
    model = model_or_failure(settings, model_id)
    if isinstance(model, int):
        return model
    try:
        target_type = check_quantize(model.quantization, type_name, allow_requantize=allow_requantize)
    except EngineError as exc:
        return _fail(exc.message)
    new_id = new_id or new_model_id(model.id, model.quantization, target_type)
    if len(new_id) > MODEL_ID_MAX_LENGTH or not _FILE_ID.fullmatch(new_id):
        return _fail(f"'{new_id}' cannot name a model file: use letters, digits, '.', '_' and '-'")
    try:
        taken = find_model(settings, new_id) is not None
    except EngineCallError as exc:
        return _fail(exc.message)
    if taken:
        return _fail(f"A model '{new_id}' exists already; choose another id with --as")
    models_dir = settings.models_dir
    target = models_dir / f"{new_id}.gguf"
    partial = models_dir / f".{new_id}.gguf.partial"
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        status = _run_quantizer(Path(model.path), partial, target_type, allow_requantize)
    except KeyboardInterrupt:
        partial.unlink(missing_ok=True)
        print("cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        if status != 0:
            return _fail(f"llama.cpp could not quantize '{model.id}' to {target_type}")
        read_gguf_info(partial)
        with folder_lock(models_dir):
            move_into_place(partial, target)
    except GGUFReadError as exc:
        return _fail(f"the quantized file cannot be read: {exc}")
    except FileExistsError:
        return _fail(f"{target} exists already; it was left as it is")
    finally:
        partial.unlink(missing_ok=True)
    print(f"{new_id}\t{target}")
    return 0
