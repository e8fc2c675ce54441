"""The embedded base model: a tiny Phi-3 built on this machine, so the default space runs offline.

`build_tiny_base` trains a byte-level BPE tokenizer on the training split, creates a
`Phi3ForCausalLM` of the size the space asks for, and pretrains it as a causal language model on
the training phrases and, apart from them, the label words (pairing the two is left for the LoRA
stage to learn). The result is an ordinary Hugging Face model folder that the LoRA, merge and
export stages treat like Phi-3-mini.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autotune.candidates.batching import length_grouped_batches, pad_batch
from autotune.candidates.cache import StageCache, digest
from autotune.candidates.data import Dataset
from autotune.spaces import TinyModel

# Bump when the recipe below changes, so cached bases built by an older recipe are not reused.
RECIPE_VERSION = 2
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>"]
EOS_ID, PAD_ID = 0, 1


@dataclass(frozen=True)
class TinyBase:
    """A built tiny base: its folder and what building it cost."""

    path: Path
    key: str
    parameters: int
    pretrain_loss: float
    seconds: float


def tiny_base_key(settings: TinyModel, dataset: Dataset) -> str:
    texts = [e.prompt + e.completion for e in dataset.train]
    return digest({"recipe": RECIPE_VERSION, "settings": settings.model_dump(), "train": texts})


def build_tiny_base(settings: TinyModel, dataset: Dataset, cache: StageCache) -> TinyBase:
    """The tiny base for these settings and this training split, built once and then cached."""
    key = tiny_base_key(settings, dataset)
    path = cache.get_or_build("base", key, lambda out: _build(settings, dataset, out))
    info = json.loads((path / "autotune_base.json").read_text())
    return TinyBase(path, key, info["parameters"], info["pretrain_loss"], info["seconds"])


def _build(settings: TinyModel, dataset: Dataset, out: Path) -> None:
    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    tokenizer = train_tokenizer(dataset, settings.vocab_size)
    model = new_phi3(settings, len(tokenizer))
    loss = pretrain(model, tokenizer, pretraining_texts(dataset), settings)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretrain_loss": loss,
        "seconds": time.perf_counter() - start,
        "settings": settings.model_dump(),
    }
    (out / "autotune_base.json").write_text(json.dumps(info, indent=2))


def train_tokenizer(dataset: Dataset, vocab_size: int):
    """A byte-level BPE tokenizer trained on the training split (prompts and completions)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator((e.prompt + e.completion for e in dataset.train), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=SPECIAL_TOKENS[EOS_ID],
        eos_token=SPECIAL_TOKENS[EOS_ID],
        unk_token=SPECIAL_TOKENS[EOS_ID],
        pad_token=SPECIAL_TOKENS[PAD_ID],
        model_max_length=512,
    )


def new_phi3(settings: TinyModel, vocab_size: int):
    """A randomly initialised Phi-3 that the onnxruntime-genai builder exports like Phi-3-mini."""
    from transformers import Phi3Config, Phi3ForCausalLM

    heads = settings.hidden_size // settings.head_size
    config = Phi3Config(
        vocab_size=vocab_size,
        hidden_size=settings.hidden_size,
        intermediate_size=settings.hidden_size * 4,
        num_hidden_layers=settings.num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        # Equal to max_position_embeddings, else the builder takes the LongRoPE path.
        original_max_position_embeddings=512,
        rope_scaling=None,
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        tie_word_embeddings=False,
    )
    return Phi3ForCausalLM(config)


def pretraining_texts(dataset: Dataset) -> list[str]:
    """The training phrases (without the template) and the completions, as separate documents.

    The base learns the language of the phrases and the words of the completions, as a real base
    model knows them, but never sees a phrase paired with its label: that is the LoRA stage's job.
    """
    return [e.text for e in dataset.train] + [e.completion for e in dataset.train]


def pretrain(model, tokenizer, texts: list[str], settings: TinyModel) -> float:
    """Causal-LM pretraining on `texts`; returns the mean loss of the last epoch."""
    if settings.pretrain_epochs == 0:
        return math.nan
    # Documents are separated by EOS, as in GPT-2 pretraining, so a document's first token is
    # also a prediction target.
    encoded = [[EOS_ID] + tokenizer(t)["input_ids"] + [EOS_ID] for t in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.pretrain_learning_rate)
    batch_size = 32
    steps = settings.pretrain_epochs * math.ceil(len(encoded) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.pretrain_learning_rate, total_steps=steps, pct_start=0.1
    )
    generator = torch.Generator().manual_seed(settings.seed)
    model.train()
    last = math.nan
    lengths = [len(ids) for ids in encoded]
    for _ in range(settings.pretrain_epochs):
        losses = []
        for indices in length_grouped_batches(lengths, batch_size, generator):
            ids, mask = pad_batch([encoded[i] for i in indices], PAD_ID)
            labels = ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        last = sum(losses) / len(losses)
    model.eval()
    return last
