"""Training at the CPU's fast precision, and a training's throughput held against the machine.

`train.dtype: auto` is bf16 on a CPU with bf16 instructions (candidates/training_model.py): the
frozen base in bf16, the LoRA weights and AdamW's moments in fp32. The bf16 merged model must
export at fp32 and int4 like an fp32 one. A training records its tokens and step seconds; with
the machine's measured matrix-product rate (cached once per machine, dtype and shapes) it states
its tokens per second and its share of that rate (candidates/throughput.py).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from autotune.candidates.throughput import (
    cached_matmul_rate,
    flops_per_token,
    linear_params,
    machine_key,
)
from autotune.candidates.train import TrainParams, TrainResult, throughput_metrics
from autotune.candidates.training_model import CPU_BF16_FLAGS, cpu_has_bf16, resolve_dtype
from tests.conftest import assert_generates

SHAPES = Counter({(64, 64): 2, (64, 128): 1})


def proc_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text()
    return {w for line in text.splitlines() if line.startswith("flags") for w in line.split()}


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux's /proc/cpuinfo")
def test_auto_is_bf16_exactly_on_a_cpu_that_lists_bf16_instructions():
    listed = any(flag in proc_flags() for flag in CPU_BF16_FLAGS)
    assert cpu_has_bf16() == listed
    if not torch.cuda.is_available():
        assert resolve_dtype("auto") == ("bf16" if listed else "fp32")
    assert [resolve_dtype(d) for d in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]


def test_flops_per_token_counts_no_weight_gradient_for_the_frozen_base():
    assert flops_per_token(1000, 10) == 4 * 1000 + 6 * 10
    assert flops_per_token(1000, 10, checkpointing=True) == 6 * 1000 + 8 * 10


def test_linear_params_tell_frozen_from_trainable_layers_and_skip_embeddings():
    model = torch.nn.Sequential(
        torch.nn.Embedding(50, 64), torch.nn.Linear(64, 64), torch.nn.Linear(64, 128)
    )
    model[2].weight.requires_grad_(False)
    model[0].weight.requires_grad_(False)
    frozen, trainable, shapes = linear_params(model)
    assert (frozen, trainable, shapes) == (64 * 128, 64 * 64, Counter({(64, 128): 1}))


def test_the_matmul_rate_is_measured_once_and_then_read_from_its_file(tmp_path):
    rates = tmp_path / "matmul_rates.json"
    first = cached_matmul_rate(rates, "cpu", "fp32", SHAPES)
    assert 1e8 < first < 1e14  # FLOP/s: between 0.1 GFLOP/s and 100 TFLOP/s
    key = machine_key("cpu", "fp32", SHAPES)
    assert json.loads(rates.read_text()) == {key: first}
    rates.write_text(json.dumps({key: 123.0}))  # a second call reads, never measures
    assert cached_matmul_rate(rates, "cpu", "fp32", SHAPES) == 123.0
    assert "fp32" in key and f"threads={torch.get_num_threads()}" in key and "64x128*1" in key
    cached_matmul_rate(rates, "cpu", "bf16", SHAPES)  # another dtype: another entry
    assert len(json.loads(rates.read_text())) == 2


def test_throughput_figures_from_a_train_result():
    result = TrainResult(
        Path("."), 1.0, 1.0, 2, 5.0, step_times=(1.5, 2.5), tokens=800, flops_per_token=1e6
    )
    assert result.tokens_per_s == 200.0 and result.flops_per_s == 2e8
    assert result.flops_share is None  # no measured rate
    assert throughput_metrics(result) == {"train_tokens_per_s": 200.0}
    measured = replace(result, matmul_rate=1e9)
    assert throughput_metrics(measured) == {"train_tokens_per_s": 200.0, "train_flops_share": 0.2}
    assert throughput_metrics(TrainResult(Path("."), 1.0, 1.0, 0, 0.0)) == {}


@pytest.fixture(scope="module")
def bf16_candidate(tiny, tmp_path_factory):
    """A short bf16 LoRA training of the tiny base, merged in bf16."""
    from autotune.candidates.merge import merge_adapter
    from autotune.candidates.train import train_adapter

    space, dataset, base = tiny
    root = tmp_path_factory.mktemp("bf16")
    params = TrainParams(
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        learning_rate=2e-3,
        epochs=1,
        batch_size=16,
        max_seq_len=128,
        target_modules=("qkv_proj", "o_proj"),
        seed=0,
        dtype="bf16",
        max_steps=6,
    )
    (root / "adapter").mkdir()
    result = train_adapter(
        base.path,
        dataset.train[:96],
        dataset.eval[:16],
        params,
        root / "adapter",
        rates=root / "matmul_rates.json",
    )
    (root / "merged").mkdir()
    merge_adapter(base.path, root / "adapter", root / "merged", dtype="bf16")
    return root, result


@pytest.mark.slow
def test_bf16_training_keeps_the_lora_weights_in_fp32_and_records_its_throughput(bf16_candidate):
    from safetensors.torch import load_file

    root, result = bf16_candidate
    adapter = load_file(root / "adapter" / "adapter_model.safetensors")
    assert adapter and {t.dtype for t in adapter.values()} == {torch.float32}
    assert len(result.step_times) == 6 and all(s > 0 for s in result.step_times)
    assert 0 < result.tokens <= result.padded_tokens
    assert result.flops_per_token > 0 and result.matmul_rate and result.matmul_rate > 0
    assert set(throughput_metrics(result)) == {"train_tokens_per_s", "train_flops_share"}
    info = json.loads((root / "adapter" / "autotune_train.json").read_text())
    assert info["tokens"] == result.tokens and info["params"]["dtype"] == "bf16"
    (key,) = json.loads((root / "matmul_rates.json").read_text())
    assert "|bf16|" in key


@pytest.mark.slow
def test_a_bf16_training_resumed_from_a_checkpoint_counts_every_step(tiny, tmp_path):
    from autotune.candidates.train import load_train_result, train_adapter

    space, dataset, base = tiny
    params = TrainParams(8, 16, 0.0, 2e-3, 1, 16, 128, ("qkv_proj",), 0, dtype="bf16", max_steps=4)
    for name in ("part", "whole"):
        (tmp_path / name).mkdir()
    train = dataset.train[:64]
    train_adapter(base.path, train, dataset.eval[:8], params, tmp_path / "part", stop_at=2)
    whole = train_adapter(
        base.path, train, dataset.eval[:8], params, tmp_path / "whole", resume=tmp_path / "part"
    )
    assert len(whole.step_times) == 4 and whole.steps == 4
    state = torch.load(tmp_path / "part" / "training_state.pt", weights_only=False)
    moments = [m for s in state["optimizer"]["state"].values() for m in s.values() if m.ndim]
    assert moments and {m.dtype for m in moments} == {torch.float32}  # AdamW's, in fp32
    assert whole.tokens == sum(len(ids) for ids in _encoded(base.path, train, params))
    assert load_train_result(tmp_path / "whole").tokens == whole.tokens


def _encoded(base_dir: Path, examples, params: TrainParams) -> list[list[int]]:
    from transformers import AutoTokenizer

    from autotune.candidates.recipe import encode

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    return [
        encode(tokenizer, e.prompt, e.completion, params.max_seq_len, params.loss_span)[0]
        for e in examples
    ]


@pytest.mark.slow
def test_a_bf16_merged_model_is_bf16_and_exports_at_fp32_and_int4(bf16_candidate, tmp_path):
    import onnx
    from safetensors.torch import load_file

    from autotune.candidates.export import ExportParams, export_onnx

    root, _ = bf16_candidate
    weights = load_file(root / "merged" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    for precision in ("fp32", "int4"):
        out = tmp_path / precision
        out.mkdir()
        export_onnx(root / "merged", ExportParams(precision, "cpu"), out)
        assert_generates(out)
        graph = onnx.load(out / "model.onnx", load_external_data=False).graph
        types = {i.type.tensor_type.elem_type for i in graph.output if i.name == "logits"}
        assert types == {onnx.TensorProto.FLOAT}  # fp32 logits, not bf16


def test_the_bench_holds_bf16_against_fp32s_interval():
    from bench.train_dtype import compare

    def row(step: float, accuracy: float, lo: float, hi: float) -> dict:
        found = {"accuracy": accuracy, "lo": lo, "hi": hi}
        return {"step_s_median": step, "int4": {"label+EOS": found, "label only": found}}

    rows = {"fp32": row(1.8, 0.55, 0.49, 0.61), "bf16": row(1.0, 0.60, 0.54, 0.66)}
    found = compare(rows, ["int4"])["bf16"]
    assert found["speedup_per_step"] == pytest.approx(1.8)
    assert found["inside_fp32_interval"] == {"int4 label+EOS": True, "int4 label only": True}
    rows["bf16"] = row(1.0, 0.62, 0.56, 0.68)
    assert not any(compare(rows, ["int4"])["bf16"]["inside_fp32_interval"].values())
