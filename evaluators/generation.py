"""Greedy generation with onnxruntime-genai, one example at a time: what a generative space's
candidates answer, scored afterwards by the text metrics (evaluators/text_metrics.py)."""

from __future__ import annotations

from collections.abc import Sequence

from autotune.evaluators.examples import Example
from autotune.evaluators.likelihood import LikelihoodMeter, appended_logits, forced_generator


def generate_greedy(
    model,
    tokenizer,
    examples: list[Example],
    max_new_tokens: int,
    prompts: Sequence[Sequence[int]] | None = None,
    meter: LikelihoodMeter | None = None,
    eos: int | None = None,
) -> list[str]:
    """Greedy completions, one example at a time, stopped at EOS or `max_new_tokens`.

    With `meter` (and `eos`), each example's first pass is teacher-forced over prompt +
    completion + EOS for the meter; the generation then rewinds to the prompt's last token and
    runs on from the cached prompt, so the prompt is still processed once."""
    if prompts is None:
        prompts = [[int(t) for t in tokenizer.encode(e.prompt)] for e in examples]
    outputs = []
    for example, prompt in zip(examples, prompts, strict=True):
        prompt = list(prompt)
        if meter is None or eos is None:
            generator = forced_generator(model, len(prompt) + max_new_tokens)
            generator.append_tokens(prompt)
        else:
            forced = [int(t) for t in tokenizer.encode(example.completion)] + [eos]
            room = len(prompt) + max(max_new_tokens, len(forced))
            generator = forced_generator(model, room)
            logits = appended_logits(generator, prompt + forced[:-1], 0)
            meter.add(logits, prompt + forced, len(prompt))
            generator.rewind_to(len(prompt) - 1)
            generator.append_tokens(prompt[-1:])
        new: list[int] = []
        while not generator.is_done() and len(new) < max_new_tokens:
            generator.generate_next_token()
            new.append(int(generator.get_next_tokens()[0]))
        outputs.append(tokenizer.decode(new).strip())
    return outputs
