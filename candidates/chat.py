"""Prompts through the model's chat template (`data.chat_template: true`).

An instruct model is trained to answer inside its chat format (ChatML for SmolLM2:
`<|im_start|>user ... <|im_end|>`, Phi-3: `<|user|> ... <|end|>`). With the option on, each
example's prompt becomes the template's rendering of an optional system message and a user turn
holding the prompt, ending with the assistant's generation prompt; the completion is the
assistant's reply, and the EOS that training appends and label scoring expects is the template's
end of turn. The rendered text is the one prompt used by training, label scoring, generation
and `autotune bench`, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autotune.candidates.data import Dataset, Example
from autotune.spaces import Space, SpaceError


def chat_prompts(examples: list[Example], tokenizer, system: str | None) -> list[Example]:
    """Each example with its prompt rendered as a user turn (after `system`), ready for the
    assistant's reply."""
    head = [{"role": "system", "content": system}] if system is not None else []
    return [
        replace(
            example,
            prompt=tokenizer.apply_chat_template(
                [*head, {"role": "user", "content": example.prompt}],
                tokenize=False,
                add_generation_prompt=True,
            ),
        )
        for example in examples
    ]


def with_chat_template(dataset: Dataset, tokenizer_dir: Path, space: Space) -> Dataset:
    """The split with prompts in the chat format of the tokenizer in `tokenizer_dir` (the base
    model's folder, or an exported model's), when the space asks for it."""
    if not space.data.chat_template:
        return dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if not tokenizer.chat_template:
        raise SpaceError(
            space.source,
            "data.chat_template",
            f"the tokenizer in {tokenizer_dir} has no chat template; expected chat_template: false",
        )
    system = space.data.system
    return replace(
        dataset,
        train=chat_prompts(dataset.train, tokenizer, system),
        eval=chat_prompts(dataset.eval, tokenizer, system),
    )
