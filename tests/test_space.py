"""The space file schema and its errors: one message naming file, field and expectation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autotune.spaces import SpaceError, load_space, parse_constraint, parse_duration
from tests.conftest import REPO


def test_shipped_spaces_are_valid():
    tiny = load_space(REPO / "spaces" / "tiny.yaml", "cpu")
    assert tiny.name == "tiny" and tiny.model.tiny is not None
    phi3 = load_space(REPO / "spaces" / "phi3.yaml", "cuda")
    assert phi3.model.path == "microsoft/Phi-3-mini-4k-instruct"
    assert phi3.model.trust_remote_code is False
    assert phi3.train.target_modules == ["qkv_proj", "o_proj"]
    assert phi3.data.prompt_template == "### Text: {phrase}\n### The tone is:\n"


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"train": {"epochz": 3}}, "train.epochz", "unknown key"),
        ({"train": {"batch_size": "eight"}}, "train.batch_size", "integer"),
        (
            {"search": {"learning_rate": {"low": 1e-2, "high": 1e-4}}},
            "search.learning_rate",
            "low < high",
        ),
        ({"search": {"lora_r": {"choices": [8, "big"]}}}, "search.lora_r", "positive integer"),
        (
            {"search": {"precision": {"choices": ["int4", "bf16"]}}},
            "search.precision",
            "cannot run on target 'cpu'",
        ),
        ({"search": {"dropout_rate": 0.1}}, "search.dropout_rate", "unknown knob"),
        ({"search": {"precision": None}}, "search.precision", "required"),
        ({"data": {"files": "nowhere.jsonl"}}, "data.files.0", "existing data file"),
        ({"model": {"tiny": None, "path": "./models/phi3"}}, "model.path", "existing model folder"),
        ({"model": {"path": "x/y"}}, "model", "exactly one of"),
        ({"constraints": {"accuracy": "at least 0.8"}}, "constraints.accuracy", ">= NUMBER"),
        ({"objectives": {"speed": "maximize"}}, "objectives.speed", "expected a metric"),
        ({"objectives": {"accuracy": "up"}}, "objectives.accuracy", "maximize"),
        ({"select": {"prefer": "size_mb"}}, "select.prefer", "one of the objectives"),
        ({"data": {"eval_fraction": 1.5}}, "data.eval_fraction", "less than 1"),
        ({"objectives": {"gpu_mem_mb": "minimize"}}, "objectives.gpu_mem_mb", "only on target"),
        ({"constraints": {"peak_mem_mb.p50": "<= 9"}}, "constraints.peak_mem_mb.p50", "metric"),
        ({"latency": {"repeats": 20, "max_repeats": 10}}, "latency", "max_repeats >= repeats"),
        ({"latency": {"stable": 2}}, "latency.stable", "less than 1"),
        (
            {"data": {"labels": None, "metric": "bleu_from_the_hub"}},
            "data.metric",
            "shipped with autotune",
        ),
        ({"search": {"method": {"choices": ["lora", "dora"]}}}, "search.method", "'qlora'"),
        ({"train": {"method": "dora"}}, "train.method", "'qlora'"),
        (
            {"train": {"method": "qlora"}, "search": {"method": "lora"}},
            "search.method",
            "one place",
        ),
        ({"search": {"batch_size": {"choices": [8, 0]}}}, "search.batch_size", "positive"),
        (
            {"search": {"gradient_checkpointing": {"choices": [True, "yes"]}}},
            "search.gradient_checkpointing",
            "true or false",
        ),
        ({"search": {"int4_algo": "gptq"}}, "search.int4_algo", "'k_quant_last'"),
        ({"train": {"dtype": "fp16"}}, "train.dtype", "needs a CUDA GPU"),
    ],
)
def test_broken_space_names_file_field_and_expectation(write_space, changes, field, expected):
    path = write_space(changes)
    with pytest.raises(SpaceError) as caught:
        load_space(path, "cpu")
    assert caught.value.field == field
    assert expected in caught.value.message
    assert str(path) in str(caught.value)


def test_invalid_yaml_reports_the_line(write_space):
    path = write_space(text="name: x\nmodel: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML at line"):
        load_space(path, "cpu")


def test_yaml_is_read_safely(write_space):
    path = write_space(text="name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(path, "cpu")


def test_memory_and_size_are_objectives(write_space):
    changes = {
        "objectives": {"e2e_ms": None, "peak_mem_mb": "minimize"},
        "constraints": {"size_mb": "<= 100", "model_mem_mb": "<= 500"},
    }
    space = load_space(write_space(changes), "cpu")
    assert list(space.objectives) == ["accuracy", "peak_mem_mb"]
    cuda = write_space({"objectives": {"accuracy": "maximize", "gpu_mem_mb": "minimize"}})
    assert "gpu_mem_mb" in load_space(cuda, "cuda").objectives


def test_cuda_space_takes_every_method_precision_and_int4_option(write_space):
    changes = {
        # batch_size moves from train to search (fixed in one place or searched in the other)
        "train": {"dtype": "fp16", "quant_type": "fp4", "double_quant": False, "batch_size": None},
        "search": {
            "method": {"choices": ["lora", "qlora"]},
            "batch_size": {"choices": [4, 8]},
            "gradient_checkpointing": {"choices": [True, False]},
            "precision": {"choices": ["fp32", "fp16", "bf16", "int8", "int4"]},
            "int4_algo": {"choices": ["default", "rtn", "k_quant", "k_quant_last"]},
        },
    }
    space = load_space(write_space(changes), "cuda")
    assert space.search["gradient_checkpointing"].choices == [True, False]
    assert space.search["batch_size"].choices == [4, 8]
    assert space.train.dtype == "fp16" and space.train.quant_type == "fp4"
    for shipped in ("phi3.yaml", "tiny-cuda.yaml"):
        assert "method" in load_space(REPO / "spaces" / shipped, "cuda").search


def test_cuda_only_settings_are_refused_for_cpu(write_space):
    # bf16 exports build for cpu but do not load there; fp16 training needs a GPU.
    with pytest.raises(SpaceError) as caught:
        load_space(REPO / "spaces" / "tiny-cuda.yaml", "cpu")
    assert caught.value.field == "search.precision" and "'bf16'" in caught.value.message
    qlora = write_space({"search": {"method": "qlora"}})  # bitsandbytes trains 4-bit on a CPU
    assert load_space(qlora, "cpu").search["method"] == "qlora"


def test_bf16_is_valid_on_cuda_only(write_space):
    path = write_space({"search": {"precision": "bf16"}})
    assert load_space(path, "cuda").search["precision"] == "bf16"
    with pytest.raises(SpaceError, match="bf16"):
        load_space(path, "cpu")


def test_duration_and_constraint_parsing():
    assert parse_duration("8h") == 8 * 3600
    assert parse_duration("90s") == 90
    assert parse_duration("1.5m") == 90
    with pytest.raises(ValueError):
        parse_duration("soon")
    constraint = parse_constraint("accuracy", ">= 0.8")
    assert constraint.violation(0.9) < 0 < constraint.violation(0.7)
    latency = parse_constraint("decode_ms.p90", "<=5")
    assert latency.violation(4.0) < 0 < latency.violation(6.0)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autotune", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"train": {"epochz": 3}}, "train.epochz"),  # unknown key
        ({"train": {"batch_size": "eight"}}, "train.batch_size"),  # wrong type
        (
            {"search": {"learning_rate": {"low": 1, "high": 0.1}}},
            "search.learning_rate",
        ),  # bad range
        ({"search": {"precision": "bf16"}}, "search.precision"),  # invalid for the target
        ({"data": {"files": "missing.jsonl"}}, "data.files.0"),  # missing data
        (
            {"model": {"tiny": None, "path": "./no/such/folder"}},
            "model.path",
        ),  # missing model folder
    ],
)
def test_cli_reports_broken_space_with_exit_2_and_no_traceback(write_space, changes, field):
    path = write_space(changes)
    result = run_cli("--space", str(path), "--target", "cpu", "--dry-run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and field in lines[0]


def test_cli_dry_run_warns_about_uncached_hub_model():
    result = run_cli("--space", str(REPO / "spaces" / "phi3.yaml"), "--target", "cuda", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "valid for target cuda" in result.stdout
    assert "not in the local Hugging Face cache" in result.stderr


@pytest.mark.parametrize("space", ["phi3.yaml", "tiny-cuda.yaml"])
def test_cli_refuses_cuda_without_a_gpu_in_one_line(space):
    result = run_cli("--space", str(REPO / "spaces" / space), "--target", "cuda")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "--dry-run" in lines[0]


@pytest.mark.slow
def test_cli_validates_a_cuda_space_without_a_gpu(write_space, shared_cache):
    space = str(REPO / "spaces" / "tiny-cuda.yaml")
    cache = ["--cache", str(shared_cache)]  # the dry run builds the base and the preflight
    result = run_cli("--space", space, "--target", "cuda", "--dry-run", *cache)
    assert result.returncode == 0, result.stderr
    assert "valid for target cuda" in result.stdout and "search.method" in result.stdout
    broken = write_space({"search": {"precision": {"choices": ["fp16", "int3"]}}})
    result = run_cli("--space", str(broken), "--target", "cuda", "--dry-run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(broken) in lines[0] and "search.precision" in lines[0]
    assert "expected one of" in lines[0] and "'int3'" in lines[0]
