"""The Optuna study: create or join it, and run trials until its budget.

`open_study` creates (or joins) a multi-objective study in a storage: the run folder's SQLite
database by default, or one that several workers share (search/workers/). `run_study` runs
trials until the study holds the budget of completed trials, counted over every worker, with
each trial's failure or pruning recorded and never fatal. A study whose budget covers every
configuration (decisions/budget.py `plan_for`) queues each once when it is made, and ends when
the queue is empty. The recipe of one trial is search/trial.py.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from autotune.candidates.cache import digest
from autotune.decisions.budget import plan_for
from autotune.decisions.record import Verdict
from autotune.errors import UsageError
from autotune.search.budget import SURPLUS, all_run, queue_every_configuration, wait_for_room
from autotune.search.fidelity import promote_paused, proposed_again
from autotune.search.record import Attr, Stopped
from autotune.search.run import Run
from autotune.search.samplers import make_sampler, sampler_seed
from autotune.search.trial import run_trial
from autotune.search.workers.identity import this_worker
from autotune.search.workers.trial_access import queued_params
from autotune.spaces import Space, StrategySection


def objective(run: Run, trials: int, tidy: Callable[[], None]):
    """The Optuna objective: the recipe, with failures and pruning recorded, never fatal.

    A trial that another worker's trials leave no room for in the budget is not run (see
    search/budget.py)."""

    def run_one(trial: optuna.Trial) -> tuple[float, ...]:
        trial.set_user_attr(Attr.WORKER, this_worker())
        if not wait_for_room(trial.study, trials, tidy, before=trial.number):
            yield_surplus(trial)
        try:
            return run_trial(trial, run)
        except optuna.TrialPruned as pruned:
            trial.set_user_attr(Attr.PRUNED, str(pruned))
            if isinstance(pruned, Stopped):
                trial.set_user_attr(Attr.VERDICT, pruned.verdict.value)
            run.events.trial_pruned(trial.number, str(pruned))
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            trial.set_user_attr(Attr.ERROR, reason)
            (run.trial_dir(trial.number) / "error.log").write_text(traceback.format_exc())
            run.events.trial_failed(trial.number, reason)
            raise

    return run_one


def yield_surplus(trial: optuna.Trial) -> None:
    """End a trial the budget has no room for as pruned, its queued parameters queued again."""
    fixed = queued_params(trial)
    if fixed is not None:  # taken from the queue: a sibling or a retry waits for a later run
        kept = (Attr.SIBLING_OF, Attr.RETRY_OF)
        attrs = {k: v for k, v in trial.user_attrs.items() if k in kept}
        trial.study.enqueue_trial(fixed, user_attrs=attrs)
    trial.set_user_attr(Attr.PRUNED, SURPLUS)
    trial.study.stop()
    raise Stopped(Verdict.SURPLUS, SURPLUS)


def space_hash(space: Space) -> str:
    """What the trials of a study depend on: every section but budget, selection and strategy."""
    return digest(space.model_dump(mode="json", exclude={"budget", "select", "strategy"}))


class StudyMismatch(UsageError):
    """The run folder's study was made from a different space."""


def open_study(
    space: Space,
    target: str,
    storage: str | optuna.storages.BaseStorage,
    seed: int,
    study_name: str | None = None,
    worker: str = "",
    queue_all: bool = False,
) -> optuna.Study:
    """Create the study, or join it when it exists and was made from the same space and target.

    The sampler (`strategy.sampler`) is seeded with `seed` for a new study, and with a seed
    derived from it, the number of trials so far and `worker` (one of several sharing the study)
    otherwise. With `queue_all`, a new study whose budget covers every configuration queues each
    training once (search/budget.py), so its sampler is never asked for a repeat.
    """
    name = study_name or space.name
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=list(space.objectives.values()),
        load_if_exists=True,
    )
    identity = {"space_hash": space_hash(space), "target": target}
    # Written first, in one attribute: a worker that joins while the first is still writing the
    # study's attributes sees the whole identity or none of it (a study made before it was
    # written has the two separate attributes only).
    attrs = study.user_attrs
    stored = attrs.get("identity") or {k: attrs.get(k) for k in identity}
    if stored == {"space_hash": None, "target": None}:
        study.set_user_attr("identity", identity)
        for key, value in identity.items():
            study.set_user_attr(key, value)
        study.set_user_attr("space", space.model_dump(mode="json"))
        with warnings.catch_warnings():  # experimental in Optuna 5; dashboards show the names
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(space.objectives))
        if queue_all and plan_for(space).exhaustive:  # once, by the process that made it
            queue_every_configuration(study, space)
    elif stored != identity:
        raise StudyMismatch(
            f"the study {name!r} was made from a different space file or target "
            f"(target {stored['target']}, space hash {stored['space_hash']}; this space file "
            f"{space.source} has {identity['space_hash']}); use another study (--study, --out) or "
            "the same space file and target to continue it"
        )
    trials_so_far = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(
        space.strategy.sampler, sampler_seed(seed, trials_so_far, worker), space
    )
    return study


def count(study: optuna.Study, *states: optuna.trial.TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


@dataclass
class Outcome:
    """How `run_study` ended: the budget, the timeout, or too many failed or pruned trials in a
    row."""

    completed: int
    failures_in_a_row: int = 0
    pruned_in_a_row: int = 0
    last_error: str = ""

    def stop_reason(self, strategy: StrategySection) -> str | None:
        if self.failures_in_a_row >= strategy.max_failures:
            return (
                f"stopped after {self.failures_in_a_row} failed trials in a row "
                f"(--max-failures {strategy.max_failures}); the last: {self.last_error}"
            )
        if self.pruned_in_a_row >= strategy.max_pruned:
            return (
                f"stopped after {self.pruned_in_a_row} pruned trials in a row "
                f"(strategy.max_pruned {strategy.max_pruned}): the sampler keeps proposing "
                "trainings the pruning rule stops"
            )
        return None


def promote(run: Run, study: optuna.Study, idle: bool = False) -> None:
    """Queue the paused trainings that now rank within their rung's share, or with `idle` (the
    last trial built nothing new) the best paused one (search/fidelity.py)."""
    fidelity = run.space.strategy.fidelity
    if fidelity is not None and fidelity.stop:
        for number in promote_paused(study, fidelity, idle):
            run.events.note(f"  trial {number}'s training goes on from its rung checkpoint")


def run_study(
    run: Run,
    study: optuna.Study,
    trials: int,
    timeout: float | None,
    tidy: Callable[[], None] = lambda: None,
) -> Outcome:
    """Run trials until `trials` completed trials exist in the study, the timeout, or too many
    failed or pruned trials in a row (`strategy.max_failures`, `strategy.max_pruned`).

    While other workers' running trials would fill the budget this worker waits: one of them may
    still fail. `tidy` fails the trials of workers that died, between waits."""
    state = optuna.trial.TrialState
    outcome = Outcome(completed=count(study, state.COMPLETE))

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        tidy()
        if trial.user_attrs.get(Attr.PRUNED) == SURPLUS:
            return
        outcome.failures_in_a_row = (
            outcome.failures_in_a_row + 1 if trial.state == state.FAIL else 0
        )
        in_vain = trial.state == state.PRUNED and Attr.RACED not in trial.user_attrs
        outcome.pruned_in_a_row = outcome.pruned_in_a_row + 1 if in_vain else 0
        if trial.state == state.FAIL:
            outcome.last_error = trial.user_attrs.get(Attr.ERROR, "")
        outcome.completed = count(study, state.COMPLETE)
        run.events.completed(outcome.completed, trials)
        promote(run, study, idle=proposed_again(study, trial))
        if (
            outcome.stop_reason(run.space.strategy)
            or all_run(study, run.space)
            or not wait_for_room(study, trials, tidy)
        ):
            study.stop()

    promote(run, study)  # paused trainings a resumed or joined study may go on with
    if not all_run(study, run.space) and wait_for_room(study, trials, tidy):
        study.optimize(
            objective(run, trials, tidy),
            timeout=timeout,
            catch=(Exception,),
            callbacks=[after_trial],
            gc_after_trial=True,
        )
    outcome.completed = count(study, state.COMPLETE)
    return outcome
