"""`autotune --dry-run`: the space validated for the target, and the plan printed; nothing
trains. The checks a study makes before its first trial run here too (search/run.py
`check_inputs`): the data files are read and split, the base model is checked against the ONNX
builder and the target modules, and exported once per precision, cut to one layer (cached)."""

from __future__ import annotations

import sys

from autotune.candidates.cache import StageCache
from autotune.candidates.data import load_dataset
from autotune.commands.options import StudyOptions
from autotune.evaluators.environment import versions
from autotune.search.budget import planned
from autotune.search.events import StudyEvents
from autotune.search.run import check_inputs
from autotune.search.workers.storage import parse_storage
from autotune.spaces import Space, knob_values, model_path, model_source
from autotune.spaces.knobs import TRAIN_KNOBS
from autotune.startup import go_offline, quiet_libraries


def dry_run(space: Space, options: StudyOptions) -> int:
    space, plan = planned(space)  # as the study would run it: the budget cut, halving off
    go_offline(space)
    quiet_libraries()
    out = options.out
    cache = StageCache(options.cache_in(out))
    source = model_source(space)
    base = None
    if source == "hub" and not hub_cached(space.model.path or "", space.model.revision):
        print(
            f"  warning: {space.model.path} is not in the local Hugging Face cache; it will be "
            "downloaded at run time (needs network access), and the model checks (architecture, "
            "target modules, preflight export) wait until then",
            file=sys.stderr,
        )
        dataset = load_dataset(space)
    else:
        dataset, base = check_inputs(space, options.target, cache, StudyEvents(), versions())
    print(f"space {space.name} ({space.source}) is valid for target {options.target}")
    if source == "tiny":
        print(f"  model: tiny Phi-3 built locally: {space.model.tiny.model_dump()}")
    elif source == "gguf" and base is not None:
        print(f"  model: {base.description}, in {base.path}")
    elif source == "local":
        print(f"  model: local folder {model_path(space)}")
    else:
        print(
            f"  model: hub id {space.model.path}"
            + (f" @ {space.model.revision}" if space.model.revision else "")
        )
    print(
        f"  data: {len(dataset.train)} train / {len(dataset.eval)} eval examples"
        + (f", labels {dataset.labels}" if dataset.labels else "")
    )
    searched = set(TRAIN_KNOBS) & set(space.search)  # shown with the knobs below
    print(f"  train: {space.train.model_dump(exclude=searched)}")
    if base is not None:
        precisions = knob_values(space.search["precision"])
        print(f"  preflight: the base exports and runs at {precisions} (one decoder layer)")
    for name, knob in space.search.items():
        print(f"  search.{name}: {knob.model_dump() if hasattr(knob, 'model_dump') else knob}")
    print(f"  objectives: {space.objectives}")
    print(f"  constraints: {[str(c) for c in space.parsed_constraints()]}")
    print(f"  select: best {space.preferred_objective()} on the feasible Pareto front")
    strategy = space.strategy
    print(
        f"  strategy: sampler {strategy.sampler}, siblings over {space.expanded_knobs() or 'none'}"
        f", {early_stopping(space)}, stop after {strategy.max_failures} failures in a row"
    )
    print(
        f"  budget: {space.budget.trials} completed trials"
        + (f", timeout {space.budget.timeout:.0f} s" if space.budget.timeout else "")
        + (", every configuration queued once" if plan.exhaustive else "")
    )
    for note in plan.notes:
        print(f"  {note}")
    print(f"  out: {out}")
    if options.storage:
        spec = parse_storage(options.storage)
        print(f"  storage: {spec.shown()} ({spec.kind}), study {options.study or space.name}")
    return 0


def early_stopping(space: Space) -> str:
    """How the study stops trainings early, in words."""
    strategy = space.strategy
    if strategy.fidelity is not None:
        fidelity = strategy.fidelity
        return f"successive halving ({fidelity.rungs} rungs, eta {fidelity.eta})"
    return "the median rule" if strategy.prune else "no early stopping"


def hub_cached(repo: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "config.json", revision=revision)
    return isinstance(found, str)
