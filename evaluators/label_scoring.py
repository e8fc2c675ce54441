"""Label scoring: the prediction of a classification is the label whose `label tokens + EOS`
are most likely after the prompt, computed from the logits of onnxruntime-genai.

One prompt pass serves every label (the key-value cache is rewound between them), and
`best_label` scores in full only the labels that can still win. With a `LikelihoodMeter`
(evaluators/likelihood.py) the prompt pass runs on over the reference label, so the reference's
likelihood costs no second pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from autotune.evaluators.examples import Example
from autotune.evaluators.likelihood import LikelihoodMeter, appended_logits, forced_generator


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sequence_scores(
    logits: np.ndarray, prompt_lengths: Sequence[int], continuations: Sequence[Sequence[int]]
) -> list[float]:
    """Sum of log p(continuation token | everything before it) for each row of a batch.

    `logits[b, t]` predicts token `t + 1` of row `b`, whose first `prompt_lengths[b]` tokens are
    the prompt and whose next tokens are `continuations[b]`.
    """
    scores = []
    for row, (start, tokens) in enumerate(zip(prompt_lengths, continuations, strict=True)):
        positions = np.arange(start - 1, start - 1 + len(tokens))
        log_probs = log_softmax(logits[row, positions].astype(np.float64))
        scores.append(float(log_probs[np.arange(len(tokens)), list(tokens)].sum()))
    return scores


def score_labels(
    model,
    tokenizer,
    examples: list[Example],
    labels: list[str],
    eos: int,
    texts: Mapping[str, str] | None = None,
    prompts: Sequence[Sequence[int]] | None = None,
    meter: LikelihoodMeter | None = None,
) -> list[str]:
    """The most likely label for each example, by label scoring (`best_label`).

    `texts` maps a label to the completion training saw for it (" joy" for a
    `completion_template` of " {tone}"), whose tokens are the ones to score; the prediction is
    still the label. `prompts` are the examples' prompts already encoded, when the caller has them.
    With `meter`, each example's prompt pass runs on with its reference label's tokens and the
    meter gets the logits: the reference's likelihood at the cost of a few more tokens.
    """
    label_tokens = encode_labels(tokenizer, labels, eos, texts)
    if prompts is None:
        prompts = [[int(t) for t in tokenizer.encode(e.prompt)] for e in examples]
    predictions = []
    for example, prompt in zip(examples, prompts, strict=True):
        forced = None
        if meter is not None:
            forced = reference_tokens(tokenizer, example, labels, label_tokens, eos, texts)
        predictions.append(labels[best_label(model, list(prompt), label_tokens, forced, meter)])
    return predictions


def reference_tokens(
    tokenizer,
    example: Example,
    labels: list[str],
    label_tokens: list[list[int]],
    eos: int,
    texts: Mapping[str, str] | None = None,
) -> list[int]:
    """The tokens of an example's reference label as label scoring scores it (its completion
    text, then EOS); a reference outside the labels is encoded the same way."""
    reference = example.completion.strip()
    if reference in labels:
        return label_tokens[labels.index(reference)]
    text = (texts or {}).get(reference, reference)
    return [int(t) for t in tokenizer.encode(text)] + [eos]


def encode_labels(
    tokenizer, labels: list[str], eos: int, texts: Mapping[str, str] | None = None
) -> list[list[int]]:
    """Each label's tokens as scored: its completion text's tokens, then EOS."""
    texts = texts or {}
    return [[int(t) for t in tokenizer.encode(texts.get(label, label))] + [eos] for label in labels]


class PromptScorer:
    """One prompt's pass through the model, then token lists scored from its key-value cache.

    A list's first token is scored from the prompt's last logits; the rest by appending the list
    (but its last token) and rewinding to the end of the prompt before the next one. With
    `forced`, the first pass runs on over `forced` (but its last token): `forced_logits` are then
    the logits of every position, and scoring `forced` itself needs no further pass.
    """

    def __init__(
        self, model, prompt: list[int], longest: int, forced: list[int] | None = None
    ) -> None:
        self.prompt_length = len(prompt)
        self.forced = list(forced) if forced else None
        longest = max(longest, len(self.forced or []))
        self.generator = forced_generator(model, len(prompt) + longest)
        if self.forced:
            self.forced_logits = appended_logits(self.generator, prompt + self.forced[:-1], 0)
            self.after_prompt = self.forced_logits[len(prompt) - 1 : len(prompt)]
        else:  # the last position's logits suffice (and are all a pruned LM head gives)
            self.generator.append_tokens(prompt)
            self.after_prompt = np.asarray(self.generator.get_output("logits"))[0, -1:]
            self.forced_logits = self.after_prompt
        self.first = log_softmax(self.after_prompt[0].astype(np.float64))
        self.appended = bool(self.forced and len(self.forced) > 1)

    def score(self, tokens: list[int]) -> float:
        """log p(tokens | prompt)."""
        logits = self.after_prompt
        if tokens == self.forced:
            logits = self.forced_logits[self.prompt_length - 1 :]
        elif len(tokens) > 1:
            generator = self.generator
            if self.appended:
                generator.rewind_to(self.prompt_length)
            appended = appended_logits(generator, tokens[:-1], self.prompt_length)
            self.appended = True
            logits = np.concatenate([self.after_prompt, appended])
        return sequence_scores(logits[None], [1], [tokens])[0]


def label_scores(model, prompt: list[int], label_tokens: list[list[int]]) -> list[float]:
    """log p(tokens | prompt) for each token list of `label_tokens`, from one prompt pass."""
    scorer = PromptScorer(model, prompt, max(len(tokens) for tokens in label_tokens))
    return [scorer.score(tokens) for tokens in label_tokens]


def best_label(
    model,
    prompt: list[int],
    label_tokens: list[list[int]],
    forced: list[int] | None = None,
    meter: LikelihoodMeter | None = None,
) -> int:
    """The index of the highest `label_scores` entry (the first on a tie), scoring as few labels
    in full as it can.

    A label's score is its first token's log-probability plus terms that are never positive, so
    once one label's full score is known, no label whose first token alone scores lower can beat
    it. Labels are tried in order of their first token's score; on a model trained for the task
    the first usually settles it, and the example costs about one prompt pass.

    With `forced` (the reference label's tokens) the prompt pass runs on over them and `meter`
    gets its logits; the reference label, already scored, is then tried first.
    """
    scorer = PromptScorer(model, prompt, max(len(tokens) for tokens in label_tokens), forced)
    if meter is not None and forced:
        meter.add(scorer.forced_logits, [*prompt, *forced], len(prompt))
    firsts = [float(scorer.first[tokens[0]]) for tokens in label_tokens]
    best, best_score = -1, -np.inf
    known = [i for i, tokens in enumerate(label_tokens) if tokens == scorer.forced]
    order = sorted(range(len(label_tokens)), key=lambda i: (-firsts[i], i))
    for index in known + [i for i in order if i not in known]:  # the reference costs nothing
        if firsts[index] < best_score:
            break  # this label and every later one cannot win
        score = scorer.score(label_tokens[index])
        if score > best_score or (score == best_score and index < best):
            best, best_score = index, score
    return best
