"""`autotune bench MODEL_DIR`: measure any onnxruntime-genai model folder on a target.

    autotune bench MODEL_DIR --target cpu|cuda [--space FILE] [--json FILE] [--repeats N] ...
        [--twin TOPK.npz | --keep-topk TOPK.npz]

Latency always; accuracy and the reference's likelihood too when a space gives the data, and
the agreement with an unquantised twin given its top-k file (one this command wrote with
--keep-topk for the twin). The same evaluators as the study.
Exit codes: 0 measured; 2 bad input (model folder, space file, target), in one message.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autotune.candidates.chat import with_chat_template
from autotune.candidates.data import load_dataset
from autotune.console.bench_table import print_benchmark
from autotune.errors import UsageError
from autotune.evaluators.accuracy import metric_location
from autotune.evaluators.likelihood import TopK
from autotune.evaluators.measurement import Benchmark, benchmark
from autotune.evaluators.runtime import check_model_folder
from autotune.spaces import LatencySection, load_space
from autotune.startup import go_offline, require_gpu


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune bench",
        description="Measure generation latency, memory, size and (with --space) accuracy of an "
        "onnxruntime-genai model folder.",
    )
    parser.add_argument("model_dir", type=Path, help="onnxruntime-genai model folder")
    parser.add_argument("--target", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--space",
        type=Path,
        help="space file: its eval split for accuracy and real prompts, its latency settings",
    )
    parser.add_argument(
        "--json", type=Path, help="where to write the results (default: bench-<folder>.json)"
    )
    defaults = LatencySection()
    parser.add_argument("--prompt-tokens", type=int, help=f"default {defaults.prompt_tokens}")
    parser.add_argument("--new-tokens", type=int, help=f"default {defaults.new_tokens}")
    parser.add_argument("--warmup", type=int, help=f"default {defaults.warmup}")
    parser.add_argument("--repeats", type=int, help=f"default {defaults.repeats}")
    parser.add_argument(
        "--stable",
        type=float,
        help="repeat until the 95%% CI of the ttft and decode medians is within this fraction",
    )
    parser.add_argument("--max-repeats", type=int, help=f"default {defaults.max_repeats}")
    parser.add_argument("--threads", type=int, help="cpu intra-op threads (default 1)")
    parser.add_argument(
        "--twin",
        type=Path,
        help="the unquantised twin's top-k file (--keep-topk of its bench): measure kl and "
        "top1_agree against it (needs --space)",
    )
    parser.add_argument(
        "--keep-topk",
        type=Path,
        help="write this model's top-k log-probs here, for its quantised siblings' --twin "
        "(needs --space)",
    )
    parser.add_argument("--quiet", action="store_true", help="write the JSON, print nothing")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, base: LatencySection) -> LatencySection:
    """The space's (or the default) latency settings with the flags given on the command line."""
    flags = {name: getattr(args, name) for name in base.model_fields if getattr(args, name, None)}
    settings = base.model_copy(update=flags)
    if settings.new_tokens < 2 or settings.prompt_tokens < 1 or settings.repeats < 3:
        raise UsageError("expected --new-tokens >= 2, --prompt-tokens >= 1 and --repeats >= 3")
    if settings.stable is not None and not 0 < settings.stable < 1:
        raise UsageError("expected --stable between 0 and 1, e.g. 0.02")
    return settings.model_copy(update={"max_repeats": max(settings.max_repeats, settings.repeats)})


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    check_model_folder(args.model_dir)
    examples, labels, metric, base = None, None, "exact_match", LatencySection()
    label_texts = None
    if args.space:
        space = load_space(args.space, args.target)
        go_offline(space)
        dataset = with_chat_template(load_dataset(space), args.model_dir, space)
        examples, labels, label_texts = dataset.eval, dataset.labels, dataset.label_texts
        metric = str(metric_location(space.data.metric, space.root))
        base = space.latency
    settings = settings_from(args, base)
    twin = read_twin(args)
    if args.target == "cuda":
        require_gpu()

    result = benchmark(
        args.model_dir,
        args.target,
        settings,
        examples,
        labels,
        metric,
        label_texts=label_texts,
        twin=twin,
        keep_topk=args.keep_topk is not None,
    )
    out = args.json or Path(f"bench-{args.model_dir.resolve().name}.json")
    out.write_text(json.dumps(result.to_json(), indent=2))
    if args.keep_topk is not None and result.topk is not None:
        result.topk.save(args.keep_topk)
    if not args.quiet:
        print_benchmark(result)
        for line in quality_lines(result):
            print(line)
        print(f"written: {out}")
    return 0


def read_twin(args: argparse.Namespace) -> TopK | None:
    """The --twin file, checked: it needs --space and excludes --keep-topk."""
    if (args.twin or args.keep_topk) and not args.space:
        raise UsageError("--twin and --keep-topk need --space (the eval examples to score)")
    if args.twin and args.keep_topk:
        raise UsageError("expected --twin (a quantised model) or --keep-topk (its twin), not both")
    if args.twin is None:
        return None
    try:
        return TopK.load(args.twin)
    except (OSError, KeyError, ValueError) as error:
        raise UsageError(
            f"{args.twin}: not a top-k file of `autotune bench --keep-topk`: {error}"
        ) from None


def quality_lines(result: Benchmark) -> list[str]:
    """The likelihood, agreement and collapse figures, one line each (the table shows the rest)."""
    metrics, lines = result.metrics, []
    if "nll" in metrics:
        lines.append(
            f"nll {metrics['nll']:.4f} nats/token ({metrics['nll.lo']:.4f} to "
            f"{metrics['nll.hi']:.4f}), perplexity {metrics['perplexity']:.3f}"
        )
    if "kl" in metrics:
        lines.append(
            f"against the twin: kl {metrics['kl']:.4f} nats/token, "
            f"top1_agree {metrics['top1_agree']:.4f}"
        )
    if result.collapse is not None and result.collapse.flagged:
        lines.append(result.collapse.reason)
    return lines
