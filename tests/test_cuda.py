"""The cuda target's CPU side: QLoRA training and its merge into the 16-bit base, and exports for
the cuda execution provider, which the builder writes without a GPU and which onnxruntime-genai
runs on a CPU once the providers are cleared. Everything is real: bitsandbytes' CPU backend
quantises and trains the tiny base in 4 bits here.
"""

from __future__ import annotations

import json
from dataclasses import replace

import bitsandbytes as bnb
import onnx
import pytest
import torch
from safetensors.torch import load_file

from autotune.candidates.export import ExportParams, export_onnx
from autotune.candidates.merge import merge_adapter
from autotune.candidates.train import TrainParams, load_for_training, train_adapter
from autotune.evaluators.accuracy import measure_accuracy

pytestmark = pytest.mark.slow
torch.set_num_threads(1)

QLORA = TrainParams(
    lora_r=8,
    lora_alpha=16,
    lora_dropout=0.0,
    learning_rate=3e-3,
    epochs=1,
    batch_size=16,
    max_seq_len=128,
    target_modules=("qkv_proj", "o_proj"),
    seed=0,
    method="qlora",
    dtype="fp32",
    quant_type="nf4",
    double_quant=True,
)


@pytest.fixture(scope="module")
def qlora(tiny, tmp_path_factory):
    """A short QLoRA training of the tiny base (with checkpoint evaluations), merged in fp32."""
    _, dataset, base = tiny
    root = tmp_path_factory.mktemp("qlora")
    (root / "adapter").mkdir()
    result = train_adapter(
        base.path, dataset.train[:320], dataset.eval[:32], QLORA, root / "adapter", checkpoints=2
    )
    (root / "merged").mkdir()
    merge_adapter(base.path, root / "adapter", root / "merged", dtype="fp32")
    return root, result


def test_qlora_base_is_4bit_nf4_and_passes_gradients_after_an_eval(tiny):
    _, _, base = tiny
    model = load_for_training(base.path, QLORA, "cpu")
    layer = model.model.layers[0].self_attn.qkv_proj
    assert isinstance(layer, bnb.nn.Linear4bit) and layer.weight.dtype == torch.uint8
    state = layer.weight.quant_state
    assert state.quant_type == "nf4" and state.nested  # NF4 with double quantisation
    # An eval pass without gradients (as at a checkpoint) must not leave the layer unable to
    # pass gradients back to its input once training resumes.
    x = torch.randn(2, 5, layer.in_features)
    model.eval()
    with torch.no_grad():
        layer(x)
    model.train()
    x.requires_grad_(True)
    layer(x).sum().backward()
    dequantised = bnb.functional.dequantize_4bit(layer.weight.data, state).float()
    expected = torch.ones(2, 5, layer.out_features) @ dequantised
    assert x.grad is not None and torch.allclose(x.grad, expected, atol=1e-4)


def test_qlora_trains_and_records_time_and_memory(qlora):
    root, result = qlora
    assert result.device == "cpu" and result.steps == 20
    assert result.peak_mem_mb > 100 and result.seconds > 0
    assert len(result.checkpoint_losses) == 2 and result.eval_loss < result.checkpoint_losses[0]
    info = json.loads((root / "adapter" / "autotune_train.json").read_text())
    assert info["params"]["method"] == "qlora" and info["peak_mem_mb"] == result.peak_mem_mb


def test_qlora_adapter_merges_into_the_16bit_base_not_the_4bit_one(tiny, qlora):
    _, _, base = tiny
    root, _ = qlora
    config = json.loads((root / "merged" / "config.json").read_text())
    assert "quantization_config" not in config
    weights = load_file(root / "merged" / "model.safetensors")
    original = load_file(base.path / "model.safetensors")
    adapter = load_file(root / "adapter" / "adapter_model.safetensors")
    name = "model.layers.0.self_attn.o_proj"
    a = adapter[f"base_model.model.{name}.lora_A.weight"]
    b = adapter[f"base_model.model.{name}.lora_B.weight"]
    delta = (QLORA.lora_alpha / QLORA.lora_r) * b @ a
    assert delta.abs().max() > 1e-4  # the adapter learned something
    w = original[f"{name}.weight"]
    assert torch.allclose(weights[f"{name}.weight"], w + delta, atol=1e-6)
    # Not the dequantised NF4 weights the adapter was trained against.
    quantised, state = bnb.functional.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    w4 = bnb.functional.dequantize_4bit(quantised, state)
    assert (weights[f"{name}.weight"] - (w4 + delta)).abs().max() > 1e-3


def test_a_16bit_merge_saves_16bit_weights_the_builder_exports(tiny, qlora, tmp_path):
    _, dataset, base = tiny
    root, _ = qlora
    (tmp_path / "merged").mkdir()
    merge_adapter(base.path, root / "adapter", tmp_path / "merged", dtype="bf16")
    weights = load_file(tmp_path / "merged" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    (tmp_path / "int4").mkdir()
    export_onnx(tmp_path / "merged", ExportParams("int4", "cuda", 32), tmp_path / "int4")
    scored = measure_accuracy(tmp_path / "int4", "cpu", dataset.eval[:4], dataset.labels, threads=1)
    assert len(scored.predictions) == 4


@pytest.mark.parametrize(
    "params",
    [ExportParams("fp16", "cuda"), ExportParams("int4", "cuda", 32, None, "k_quant_last")],
    ids=["fp16", "int4-k_quant_last"],
)
def test_cuda_export_of_a_qlora_candidate_runs_on_cpu(tiny, qlora, tmp_path, params):
    _, dataset, _ = tiny
    root, _ = qlora
    export_onnx(root / "merged", params, tmp_path)
    config = json.loads((tmp_path / "genai_config.json").read_text())
    providers = config["model"]["decoder"]["session_options"]["provider_options"]
    assert [list(p) for p in providers] == [["cuda"]]
    graph = onnx.load(tmp_path / "model.onnx", load_external_data=False).graph
    bits = {
        n.name: a.i
        for n in graph.node
        if n.op_type == "MatMulNBits"
        for a in n.attribute
        if a.name == "bits"
    }
    if params.precision == "int4":  # k_quant_last: an int4 body and an int8 LM head
        assert bits.pop("/lm_head/MatMul_Q8") == 8 and set(bits.values()) == {4}
    else:
        assert bits == {}
        assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
    # Loaded on the CPU (open_model clears the providers): label scoring and greedy generation.
    examples = dataset.eval[:6]
    scored = measure_accuracy(tmp_path, "cpu", examples, dataset.labels, threads=1)
    assert set(scored.predictions) <= set(dataset.labels) and len(scored.predictions) == 6
    generated = measure_accuracy(tmp_path, "cpu", examples, None, threads=1)
    assert all(isinstance(p, str) for p in generated.predictions)


def test_lora_in_bf16_with_gradient_checkpointing_trains_on_cpu(tiny, tmp_path):
    _, dataset, base = tiny
    params = replace(
        QLORA, method="lora", dtype="bf16", gradient_checkpointing=True, quant_type=None
    )
    result = train_adapter(base.path, dataset.train[:64], dataset.eval[:16], params, tmp_path)
    assert result.steps == 4 and torch.isfinite(torch.tensor(result.train_loss))
    adapter = load_file(tmp_path / "adapter_model.safetensors")
    assert {t.dtype for t in adapter.values()} == {torch.float32}  # LoRA weights stay fp32
