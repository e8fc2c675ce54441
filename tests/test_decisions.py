"""The decision rules (decisions/) on hand-made records: the one quant_drop rule, repeats and
the budget, the median rule, and typed records read back from a real Optuna study."""

from __future__ import annotations

import re

import optuna

from autotune.decisions.budget import budget_reached, repeat_of, room_for_one
from autotune.decisions.derived import is_twin, twin_params, with_quant_drop
from autotune.decisions.median import SETTLED, earlier_losses, earlier_verdict, median_stop
from autotune.decisions.record import Raced, Rung, TrialRecord, Verdict
from autotune.search.record import Attr, read_trials
from tests.layers import REPO, package_folders


def record(number: int, precision: str, accuracy: float | None = None, **fields) -> TrialRecord:
    params = {"lora_r": 8, "learning_rate": 1e-3, "precision": precision}
    params.update(fields.pop("params", {}))
    metrics = {"accuracy": accuracy} if accuracy is not None else {}
    fields.setdefault("state", "COMPLETE")
    fields.setdefault("adapter_key", "a")
    return TrialRecord(number=number, params=params, metrics=metrics, **fields)


def test_the_unquantised_twin_is_the_same_training_at_the_targets_plain_precision():
    int4 = record(0, "int4", 0.7, params={"int4_block_size": 32, "shared_embeddings": True})
    fp32 = record(1, "fp32", 0.8, params={"shared_embeddings": True})
    other_training = record(2, "fp32", 0.9, adapter_key="b", params={"shared_embeddings": True})
    other_knobs = record(3, "fp32", 0.6, params={"shared_embeddings": False})
    fp16 = record(4, "fp16", 0.75, params={"shared_embeddings": True})
    assert twin_params(int4.params, "cpu")["precision"] == "fp32"
    assert "int4_block_size" not in twin_params(int4.params, "cpu")
    assert is_twin(int4, fp32, "cpu") and not is_twin(int4, fp32, "cuda")
    assert is_twin(int4, fp16, "cuda")
    assert not is_twin(int4, other_training, "cpu") and not is_twin(int4, other_knobs, "cpu")
    filled = with_quant_drop([int4, other_training, other_knobs, fp32, fp16], "cpu")
    assert abs(filled[0].metrics["quant_drop"] - 0.1) < 1e-12  # from trial 1, not 2 or 3
    assert "quant_drop" not in int4.metrics  # the records read are left as they were
    # fp16 is quantised on cpu (its twin is fp32) and plain on cuda.
    assert abs(filled[4].metrics["quant_drop"] - 0.05) < 1e-12
    on_cuda = with_quant_drop([int4, fp32, fp16], "cuda")
    assert "quant_drop" not in on_cuda[2].metrics
    assert abs(on_cuda[0].metrics["quant_drop"] - 0.05) < 1e-12


def test_a_trial_measured_before_its_twin_keeps_its_own_quant_drop():
    int4 = record(0, "int4", 0.7, params={"int4_block_size": 32})
    int4.metrics["quant_drop"] = 0.02
    fp32 = record(1, "fp32", 0.8)
    assert with_quant_drop([int4, fp32], "cpu")[0].metrics["quant_drop"] == 0.02


def test_a_repeat_is_a_completed_configuration_proposed_again():
    done = record(0, "int4", 0.7, suggested={"lora_r": 8, "precision": "int4"})
    pruned = record(1, "fp32", state="PRUNED", suggested={"lora_r": 8, "precision": "fp32"})
    assert repeat_of({"lora_r": 8, "precision": "int4"}, [done, pruned]) == 0
    assert repeat_of({"lora_r": 8, "precision": "fp32"}, [done, pruned]) is None
    assert repeat_of({"lora_r": 16, "precision": "int4"}, [done, pruned]) is None


def test_the_budget_counts_completed_and_running_trials():
    assert room_for_one(completed=4, running=1, trials=6)
    assert not room_for_one(completed=4, running=2, trials=6)
    assert budget_reached(6, 6) and not budget_reached(5, 6)


def test_the_median_rule_and_the_verdict_a_configuration_keeps():
    first = record(0, "fp32", 0.7, adapter_key="a", checkpoint_losses=(1.0, 0.5))
    sibling = record(1, "int4", 0.6, adapter_key="a", checkpoint_losses=(1.0, 0.5))
    second = record(2, "fp32", 0.7, adapter_key="b", checkpoint_losses=(1.2, 0.9))
    paused = record(3, "fp32", state="PRUNED", adapter_key="c", reason="eval loss 2 ...")
    raced = record(4, "int4", state="PRUNED", adapter_key="d")
    raced.raced = Raced(64, 592, 0, "dominated after 64 of 592 examples by trial 0")
    records = [first, sibling, second, paused, raced]
    assert sorted(earlier_losses(records, 1)) == [0.5, 0.9]  # one loss per training
    assert earlier_losses(records, 1, exclude="a") == [0.9]
    assert earlier_verdict(records, "a") == SETTLED
    assert earlier_verdict(records, "d") == SETTLED  # its training finished
    assert earlier_verdict(records, "c") == "as trial 3: eval loss 2 ..."
    assert earlier_verdict(records, "new") is None
    assert median_stop(0.8, 1, 3, [0.5, 0.9], prune_after=3) is None  # too few to judge
    assert median_stop(0.6, 1, 3, [0.5, 0.9, 0.7], prune_after=3) is None
    stop = median_stop(0.8, 1, 3, [0.5, 0.9, 0.7], prune_after=3)
    assert stop == (
        "eval loss 0.8000 at checkpoint 2 of 3 is worse than the median 0.7000 of 3 earlier "
        "trainings"
    )


def test_typed_fields_read_back_from_a_study(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    rung = Rung(
        reached=1, of=3, steps=8, losses=(0.9,), stopped="paused at rung 1", ends=(8, 24, 64)
    )
    trial = study.ask()
    trial.set_user_attr(Attr.RUNG, rung.to_json())
    trial.set_user_attr(Attr.VERDICT, Verdict.PAUSED.value)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    study.enqueue_trial({"x": 1.0}, user_attrs={Attr.SIBLING_OF: 0})
    queued = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    study.tell(queued, 1.0)
    first, second = read_trials(study)
    assert first.rung == rung and first.verdict is Verdict.PAUSED and first.paused
    assert not first.queued and first.raced is None and first.suggested == {}
    assert second.queued and second.sibling_of == 0 and second.rung is None
    assert second.suggested == {"x": 1.0}
    assert second.verdict is None and not second.paused


def test_dominance_is_defined_once():
    """Fronts, tiers, racing and the benches call decisions/dominance.py; no module (bench
    included) writes its own "at least as good everywhere, better somewhere"."""
    rule = re.compile(
        r"^\s*def _?(dominates|dominated|beats|no_worse|at_least_as_good|ties_or_beats)\b", re.M
    )
    folders = [*package_folders().values(), "bench"]
    found = sorted(
        str(path.relative_to(REPO))
        for folder in folders
        for path in (REPO / folder).rglob("*.py")
        # git-ignored folders (a peer's venv under bench/, caches) are not the project's code
        if not any(part.startswith(".") for part in path.relative_to(REPO).parts)
        and rule.search(path.read_text())
    )
    assert found == ["decisions/dominance.py"]
