"""A finished (or partly finished) study read back for reports: its space, target and trials.

`load_finished_run(storage_url, study_name)` reads any Optuna storage an autotune study lives in;
`load_run_folder(folder)` is the common case, the SQLite database `study.db` of a run folder.
`RunResults` adds what every report needs: the trials table, and the candidates and the
selection the search decided (search/decide.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from autotune.decisions.candidate import Candidate
from autotune.decisions.record import TrialRecord
from autotune.decisions.selection import Selection
from autotune.errors import UsageError
from autotune.reports.table import trials_frame
from autotune.search.decide import Decision, decide
from autotune.spaces import Space, SpaceError, stored_space


def load_finished_run(
    storage: str | optuna.storages.BaseStorage, study_name: str, shown: str | None = None
) -> tuple[optuna.Study, Space, str]:
    """The study `study_name` in `storage` (a URL Optuna opens, or a storage), the space it was
    made from and its target; `shown` names the storage in messages."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    shown = shown or str(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise UsageError(
            f"no study {study_name!r} in {shown}; it holds {names or 'no study'}"
        ) from None
    raw, target = study.user_attrs.get("space"), study.user_attrs.get("target")
    if not isinstance(raw, dict) or target is None:
        raise UsageError(
            f"the study {study_name!r} in {shown} was not made by autotune "
            "(no space or target in its user attributes)"
        )
    try:
        space = stored_space(raw, source=f"{shown} (study {study_name})")
    except SpaceError as error:
        raise UsageError(f"the stored space cannot be read: {error}") from None
    return study, space, str(target)


def run_folder_storage(folder: Path) -> tuple[str, str]:
    """The storage URL and study name of a run folder's `study.db`."""
    if not folder.is_dir():
        raise UsageError(f"no such run folder: {folder}")
    database = folder / "study.db"
    if not database.is_file():
        raise UsageError(f"{folder} is not a run folder (it has no study.db)")
    url = f"sqlite:///{database.resolve()}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        names = optuna.get_all_study_names(url)
    except Exception as error:  # not an Optuna database
        raise UsageError(f"{database} is not an Optuna study database ({error})") from None
    if len(names) != 1:
        raise UsageError(f"{database} holds {len(names)} studies ({names}); expected one")
    return url, names[0]


def load_run_folder(folder: Path) -> tuple[optuna.Study, Space, str]:
    """The study of a run folder, its space and target."""
    return load_finished_run(*run_folder_storage(folder))


@dataclass
class RunResults:
    """One study as the reports see it."""

    study: optuna.Study
    space: Space
    target: str
    label: str  # how reports name the run (its folder's name)
    folder: Path | None
    records: list[TrialRecord]  # every trial, as the study recorded it
    frame: pd.DataFrame  # the trials table
    candidates: list[Candidate]
    selection: Selection
    reference: TrialRecord | None = None  # the untrained base, measured like a candidate
    confirmed: list[Candidate] = field(default_factory=list)  # the round's, with its figures

    @classmethod
    def of(
        cls,
        study: optuna.Study,
        space: Space,
        target: str,
        label: str,
        folder: Path | None = None,
        decision: Decision | None = None,
    ) -> RunResults:
        """The study as the reports see it: what the search decided (`decision`, made at the
        end of the run), or what the rules decide from the study as it is stored."""
        decision = decision or decide(study, space, target)
        return cls(
            study,
            space,
            target,
            label,
            folder,
            decision.records,
            trials_frame(decision.records),
            decision.candidates,
            decision.selection,
            decision.reference,
            decision.confirmed,
        )

    @classmethod
    def from_folder(cls, folder: Path) -> RunResults:
        folder = Path(folder)
        return cls.of(*load_run_folder(folder), label=folder.resolve().name, folder=folder)

    @property
    def completed(self) -> pd.DataFrame:
        if not len(self.frame):
            return self.frame
        return self.frame[self.frame["state"] == "COMPLETE"]

    def front_frame(self) -> pd.DataFrame:
        """The rows of the feasible Pareto front."""
        numbers = [c.number for c in self.selection.front]
        return self.frame[self.frame["number"].isin(numbers)] if numbers else self.frame.iloc[:0]

    def row(self, number: int) -> pd.Series:
        return self.frame[self.frame["number"] == number].iloc[0]

    def environments(self) -> list[dict[str, Any]]:
        """The distinct machines the completed trials were measured on (most trials first)."""
        seen: Counter[str] = Counter()
        found: dict[str, dict[str, Any]] = {}
        for record in self.records:
            environment = record.measured.get("environment")
            if environment:
                key = repr(sorted((k, repr(v)) for k, v in environment.items()))
                seen[key] += 1
                found[key] = environment
        return [found[key] for key, _ in seen.most_common()]

    def measured(self, number: int) -> dict[str, Any]:
        """How trial `number` was measured (settings, examples, machine); {} if not recorded."""
        return self.records[number].measured

    def wall_seconds(self) -> float | None:
        """From the first trial's start to the last trial's end."""
        trials = self.study.get_trials(deepcopy=False)
        starts = [t.datetime_start for t in trials if t.datetime_start]
        ends = [t.datetime_complete for t in trials if t.datetime_complete]
        if not starts or not ends:
            return None
        return (max(ends) - min(starts)).total_seconds()
