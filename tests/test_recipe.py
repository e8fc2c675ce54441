"""The training recipe as settings: which tokens the loss counts and how the learning rate moves,
validated in the space file and part of the adapter's cache key."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from autotune.candidates.recipe import SCHEDULES, encode, make_schedule
from autotune.candidates.train import TrainParams
from autotune.cli import main
from autotune.search.stages import adapter_key

PARAMS = TrainParams(
    lora_r=8,
    lora_alpha=16,
    lora_dropout=0.0,
    learning_rate=1e-3,
    epochs=1,
    batch_size=8,
    max_seq_len=64,
    target_modules=("q_proj",),
    seed=0,
)


@pytest.fixture(scope="module")
def tokenizer(tiny):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny[2].path)


@pytest.mark.slow
def test_loss_spans_count_the_tokens_they_name(tokenizer):
    prompt, completion = "### Text: a lovely day\n### The tone is:\n", "joy"
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    n_answer = len(tokenizer(completion, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    ids, labels = encode(tokenizer, prompt, completion, 64, "completion_eos")
    assert ids[-1] == eos and labels[:n_prompt] == [-100] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and len(ids) == n_prompt + n_answer + 1
    ids, labels = encode(tokenizer, prompt, completion, 64, "completion")
    assert eos not in ids and labels == [-100] * n_prompt + ids[n_prompt:]
    ids, labels = encode(tokenizer, prompt, completion, 64, "whole_text")
    assert labels == ids and ids[-1] == eos
    ids, labels = encode(tokenizer, prompt, completion, 8, "completion_eos")
    assert len(ids) == 8 and ids[-1] == eos  # the prompt's start is cut, never the answer


def rates(schedule: str, steps: int = 100, warmup: float = 0.1) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_schedule(optimizer, schedule, 1.0, steps, warmup)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_schedules_warm_up_then_hold_or_decay():
    constant, linear, cosine, cycle = (
        rates(s) for s in ("constant", "linear", "cosine", "one_cycle")
    )
    assert constant[0] == pytest.approx(0.1) and constant[9:] == [pytest.approx(1.0)] * 91
    assert linear[10] == pytest.approx(1.0) and linear[55] == pytest.approx(0.5)
    assert linear[-1] < 0.02 and cosine[55] == pytest.approx(0.5) and cosine[-1] < 0.01
    assert max(cycle) == pytest.approx(1.0) and cycle.index(max(cycle)) in (9, 10)
    assert cycle[0] == pytest.approx(0.04) and cycle[-1] < 0.02
    assert rates("constant", warmup=0.0) == [pytest.approx(1.0)] * 100


def test_the_recipe_is_part_of_the_adapter_key():
    keys = {adapter_key("base", "data", replace(PARAMS, lr_schedule=s), {}) for s in SCHEDULES}
    keys |= {adapter_key("base", "data", replace(PARAMS, loss_span="whole_text"), {})}
    keys |= {adapter_key("base", "data", replace(PARAMS, warmup_ratio=0.1), {})}
    assert len(keys) == len(SCHEDULES) + 2


@pytest.mark.parametrize(
    ("train", "field"),
    [
        ({"lr_schedule": "exponential"}, "train.lr_schedule"),
        ({"loss_span": "prompt"}, "train.loss_span"),
        ({"warmup_ratio": 1.5}, "train.warmup_ratio"),
    ],
)
def test_a_bad_recipe_setting_is_one_line(write_space, capsys, train, field):
    space = write_space({"train": train})
    code = main(["--space", str(space), "--target", "cpu", "--dry-run"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and f"{space}: {field}: " in lines[0], lines
