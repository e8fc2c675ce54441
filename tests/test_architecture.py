"""The layout's rules: imports flow one way, one trial record, one error base, cache keys that
name the tools that made the entry, and the defects found in review."""

from __future__ import annotations

import importlib.metadata

import optuna
import pytest

from autotune.candidates.export import ExportParams
from autotune.candidates.train import TrainParams
from autotune.commands.report import shared_results
from autotune.decisions.record import TrialRecord
from autotune.errors import AutotuneError, UsageError
from autotune.evaluators.environment import versions
from autotune.reports.selection import parse_where
from autotune.search import stages
from autotune.search.record import GAVE_UP, Attr, read_trials, record_of, stored_attrs
from autotune.search.study import open_study
from autotune.search.workers.recovery import requeue, requeue_interrupted
from autotune.search.workers.storage import open_storage, parse_storage
from autotune.spaces import SpaceError, load_space, parse_constraint
from tests.layers import REPO, assemble, lint_imports, package_folders

PACKAGE_FOLDERS = tuple(package_folders().values())


def test_the_import_contract_holds(tmp_path):
    result = lint_imports(assemble(tmp_path).parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    package = assemble(tmp_path)
    module = package / "candidates" / "merge.py"
    module.write_text(module.read_text() + "\nfrom autotune.search import study  # noqa\n")
    result = lint_imports(package.parent)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "autotune.candidates.merge -> autotune.search.study" in result.stdout


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(REPO)): n
        for folder in (*PACKAGE_FOLDERS, "tests", "bench", "docs")
        for path in (REPO / folder).rglob("*.py")
        if not any(part.startswith(".") for part in path.parts)
        and (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


def test_every_bad_input_error_is_one_autotune_error():
    for error in (SpaceError, UsageError):
        assert issubclass(error, AutotuneError) and error.exit_code == 2
    from autotune.evaluators.runtime import ModelFolderError
    from autotune.search.study import StudyMismatch
    from autotune.search.workers import RunFolderBusy, StorageError

    for error in (ModelFolderError, StudyMismatch, RunFolderBusy, StorageError):
        assert issubclass(error, AutotuneError)


# --------------------------------------------------------------------------- cache keys


def _train_params() -> TrainParams:
    return TrainParams(
        lora_r=8,
        lora_alpha=16.0,
        lora_dropout=0.05,
        learning_rate=1e-3,
        epochs=1,
        batch_size=8,
        max_seq_len=64,
        target_modules=("qkv_proj",),
        seed=0,
    )


def _keys(exporting: ExportParams) -> tuple[str, str, str]:
    """The export, adapter and merge keys, with the versions installed now."""
    installed = versions()
    return (
        stages.export_key("merged", exporting, installed),
        stages.adapter_key("b", "d", _train_params(), installed),
        stages.merged_key("a", "fp32", installed),
    )


def test_a_new_builder_release_makes_new_exports_and_keeps_the_adapters(monkeypatch):
    exporting = ExportParams(precision="int4", target="cpu")
    before = _keys(exporting)
    installed = importlib.metadata.version

    def upgraded(name: str) -> str:
        return "9.9.9" if name == "onnxruntime-genai" else installed(name)

    monkeypatch.setattr(importlib.metadata, "version", upgraded)
    after = _keys(exporting)
    assert after[0] != before[0]  # the export was made by another builder
    assert after[1] == before[1]  # the training did not use it


def test_a_new_peft_release_makes_new_adapters_and_merges(monkeypatch):
    exporting = ExportParams(precision="int4", target="cpu")
    before = _keys(exporting)
    installed = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda n: "0.99" if n == "peft" else installed(n)
    )
    after = _keys(exporting)
    assert after[1] != before[1] and after[2] != before[2]
    assert after[0] == before[0]  # the export key names the merged model, not peft


# --------------------------------------------------------------------------- the trial record


def test_feasibility_is_what_the_study_stored_not_recomputed(tmp_path, write_space):
    space = load_space(write_space(), "cpu")  # accuracy >= 0.6
    study = open_study(space, "cpu", f"sqlite:///{tmp_path / 'study.db'}", seed=0)
    trial = study.ask()
    trial.set_user_attr(Attr.METRICS, {"accuracy": 0.9, "e2e_ms.p50": 1.0})
    trial.set_constraint("accuracy >= 0.6", 0.25)  # stored as violated, whatever the metrics say
    trial.set_constraint("e2e_ms <= 5", -4.0)
    study.tell(trial, [0.9, 1.0])
    (record,) = read_trials(study)
    assert record.complete and record.feasible is False
    assert record.constraints == {"accuracy >= 0.6": 0.25, "e2e_ms <= 5": -4.0}
    assert record.metrics["accuracy"] == 0.9


def test_the_record_round_trips_through_user_attributes(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    trial = study.ask()
    written = TrialRecord(
        number=trial.number,
        state="COMPLETE",
        params={"lora_r": 8, "precision": "int4"},
        metrics={"accuracy": 0.7},
        seconds={"train": 1.5},
        onnx_dir="/tmp/x",
        measured={"eval_examples": 10},
    )
    for key, value in stored_attrs(written).items():
        trial.set_user_attr(key, value)
    study.tell(trial, 0.7)
    read = record_of(study.trials[0])
    assert (read.params, read.metrics, read.seconds, read.onnx_dir, read.measured) == (
        written.params,
        written.metrics,
        written.seconds,
        written.onnx_dir,
        written.measured,
    )


def test_the_study_names_its_objectives_for_dashboards(tmp_path, write_space):
    space = load_space(write_space(), "cpu")
    study = open_study(space, "cpu", f"sqlite:///{tmp_path / 'study.db'}", seed=0)
    assert study.metric_names == ["accuracy", "e2e_ms"]


# --------------------------------------------------------------------------- defects


def test_one_constraint_grammar_for_spaces_and_where(write_space):
    assert parse_constraint("e2e_ms", "<= 1e+3").bound == 1000.0
    assert parse_where("e2e_ms<=1e+3").bound == 1000.0
    assert parse_where("accuracy >= .8").bound == 0.8
    space = load_space(write_space({"constraints": {"e2e_ms": "<= 1e+3"}}), "cpu")
    assert "e2e_ms <= 1000" in [str(c) for c in space.parsed_constraints()]
    for bad in ("<= 1e", ">= 0.8.1", "== 3"):
        with pytest.raises(ValueError):
            parse_constraint("accuracy", bad)
        with pytest.raises(UsageError):
            parse_where(f"accuracy{bad}")


def test_report_finds_a_journal_given_with_a_tilde(tmp_path, write_space, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    space = load_space(write_space(), "cpu")
    spec = parse_storage("journal:~/studies/tiny.log")
    assert spec.journal_path == tmp_path / "studies" / "tiny.log"
    open_study(space, "cpu", open_storage(spec), seed=0)
    results = shared_results("journal:~/studies/tiny.log", None, tmp_path / "report")
    assert results.label == space.name and results.records == []
    with pytest.raises(UsageError, match="no such journal file"):
        shared_results("journal:~/studies/other.log", None, tmp_path / "report")


def _running_trial(study: optuna.Study, retries: int) -> optuna.trial.FrozenTrial:
    trial = study.ask()
    trial.suggest_int("lora_r", 8, 64)
    if retries:
        trial.set_user_attr(Attr.RETRIES, retries)
    return study.trials[trial.number]


def test_a_configuration_that_keeps_dying_is_retried_twice_then_given_up(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    second = _running_trial(study, retries=1)
    assert requeue_interrupted(study, max_retries=2) == [second.number]
    (queued,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert queued.user_attrs[Attr.RETRIES] == 2 and queued.user_attrs[Attr.RETRY_OF] == 1 - 1

    third = _running_trial(study, retries=2)  # takes the queued retry's place in the numbering
    requeue_interrupted(study, max_retries=2)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.number for t in waiting] == []
    record = record_of(study.trials[third.number])
    assert record.state == "FAIL" and record.reason.startswith("gave up after 2 retries")


def test_a_heartbeat_failure_past_the_cap_is_noted_in_the_study(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    trial = _running_trial(study, retries=2)
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # as Optuna's heartbeat does
    requeue(study, study.trials[trial.number], max_retries=2)
    assert study.get_trials(states=(optuna.trial.TrialState.WAITING,)) == []
    (record,) = read_trials(study)
    assert record.reason == GAVE_UP.format(
        retries=2, reason="interrupted: the worker running this trial stopped sending heartbeats"
    )


def test_max_retries_is_a_validated_strategy_setting(write_space):
    assert load_space(write_space(), "cpu").strategy.max_retries == 2
    with pytest.raises(SpaceError) as caught:
        load_space(write_space({"strategy": {"max_retries": -1}}), "cpu")
    assert caught.value.field == "strategy.max_retries"


def test_every_subpackage_is_listed_for_the_wheel():
    """A folder with an __init__.py that pyproject does not list would be left out of the
    installed package (and out of the import contract's check)."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for name, folder in package_folders().items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *parts)))
    assert found == listed
