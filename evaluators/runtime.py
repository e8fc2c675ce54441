"""Open an exported model with onnxruntime-genai on a target (cpu or cuda)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import autotune  # noqa: F401  (turns onnxruntime telemetry off before the import below)
from autotune.errors import UsageError


class ModelFolderError(UsageError):
    """A folder that is not a loadable onnxruntime-genai model."""


def check_model_folder(path: Path) -> None:
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(
            f"{path}: no such folder; expected an onnxruntime-genai model folder"
        )
    if not (path / "genai_config.json").is_file():
        raise ModelFolderError(
            f"{path}: no genai_config.json; expected an onnxruntime-genai model folder"
        )


def open_model(path: Path, target: str, threads: int | None = None):
    """A fresh `og.Model` on the target's execution provider; on cpu, `threads` intra-op threads."""
    import onnxruntime_genai as og

    check_model_folder(path)
    try:
        config = og.Config(str(path))
        config.clear_providers()
        if target == "cuda":
            config.append_provider("cuda")
        if target == "cpu" and threads is not None:
            options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        return og.Model(config)
    except RuntimeError as error:  # onnxruntime-genai raises plain RuntimeError
        raise ModelFolderError(f"{path}: onnxruntime-genai could not load it: {error}") from error


def special_ids(path: Path) -> tuple[int, int]:
    """(eos, pad) token ids from genai_config.json."""
    model = json.loads((Path(path) / "genai_config.json").read_text())["model"]
    eos = model["eos_token_id"]
    eos = eos[0] if isinstance(eos, list) else eos
    pad = model.get("pad_token_id", eos)
    pad = pad[0] if isinstance(pad, list) else pad
    return int(eos), int(pad)


@dataclass
class LoadedModel:
    """An opened model folder with its tokenizer: loaded once, then shared by the latency and
    accuracy measurements of one candidate."""

    path: Path
    model: Any  # og.Model
    tokenizer: Any  # og.Tokenizer
    load_s: float

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer.encode(text)]


def load_model(path: Path, target: str, threads: int | None = None) -> LoadedModel:
    """`open_model` and its tokenizer, timed."""
    import onnxruntime_genai as og

    start = time.perf_counter()
    model = open_model(path, target, threads)
    load_s = time.perf_counter() - start
    return LoadedModel(Path(path), model, og.Tokenizer(model), load_s)
