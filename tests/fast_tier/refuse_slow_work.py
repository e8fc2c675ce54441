"""The fast tier's rule, enforced: a test not marked `slow` neither trains, nor exports, nor loads
a model to measure it, nor runs a study.

While such a test runs (tests/conftest.py), each entry point of that work is replaced by a
refusal that raises `SlowWorkRefused`: in every module of the project and its tests that holds
it, in modules imported during the test, and in the Python processes the test starts (the
folder's sitecustomize.py, which PYTHONPATH brings in, installs it at their start). Afterwards
the real functions are put back, so slow tests run them. Stdlib only: the Python processes a
fast test starts all load this module.
"""

from __future__ import annotations

import functools
import importlib.abc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

# module -> {function: what calling it does}. The tiny base counts even when it is cached: on a
# clean checkout (CI) it is pretrained first.
SLOW_WORK = {
    "autotune.candidates.tiny": {"build_tiny_base": "builds and pretrains the tiny base"},
    "autotune.candidates.train": {"train_adapter": "trains a model"},
    "autotune.candidates.export": {"export_onnx": "exports a model with the model builder"},
    "autotune.evaluators.runtime": {"load_model": "loads an ONNX model to measure it"},
    "autotune.search.study": {"run_study": "runs a study"},
}


# In a test process, a failure that pytest reports as the test's own (and caches with a fixture
# that raised it); elsewhere, in the processes a test starts, a BaseException. Either way not an
# Exception: code under test that catches those (a failing trial, the preflight export) must not
# turn the refusal into an ordinary outcome.
_Base = sys.modules["pytest"].fail.Exception if "pytest" in sys.modules else BaseException


class SlowWorkRefused(_Base):
    """Slow work reached from a test not marked slow."""


_REAL: dict[tuple[str, str], Callable] = {}
_REFUSALS: dict[tuple[str, str], Callable] = {}


def refusal(module: str, name: str) -> Callable:
    """The stand-in for `module.name` (one per function, so that it can be found and undone)."""
    key = (module, name)
    if key not in _REFUSALS:
        what = f"{SLOW_WORK[module][name]} ({module}.{name}): mark it slow"

        @functools.wraps(_REAL[key])
        def refuse(*args, **kwargs):
            test = os.environ.get("PYTEST_CURRENT_TEST", "this test")  # who, in its tier
            raise SlowWorkRefused(f"{test} {what}")

        _REFUSALS[key] = refuse
    return _REFUSALS[key]


def _refuse_in(module: ModuleType) -> None:
    """Put the refusals into a just-loaded defining module."""
    for name in SLOW_WORK[module.__name__]:
        real = getattr(module, name)
        if real not in _REFUSALS.values():
            _REAL[(module.__name__, name)] = real
            setattr(module, name, refusal(module.__name__, name))


class _RefuseOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Loads a module of SLOW_WORK with the loader that would have, then puts the refusals in
    before any other module can import its functions."""

    def __init__(self) -> None:
        self.loaders: dict[str, importlib.abc.Loader] = {}

    def find_spec(self, fullname, path, target=None):
        if fullname not in SLOW_WORK:
            return None
        for finder in sys.meta_path:
            find = None if finder is self else getattr(finder, "find_spec", None)
            found = find(fullname, path, target) if find else None
            if found is not None and found.loader is not None:
                self.loaders[fullname] = found.loader
                found.loader = self
                return found
        return None

    def create_module(self, spec):
        return self.loaders[spec.name].create_module(spec)

    def exec_module(self, module):
        self.loaders[module.__name__].exec_module(module)
        _refuse_in(module)


def _own_modules() -> Iterator[ModuleType]:
    """The loaded modules of the project and its tests: all but the installed ones."""
    installed = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and not file.startswith(installed):
            yield module


def _swap(pairs: list[tuple[Callable, Callable]]) -> None:
    """Wherever an own module holds the first of a pair, put the second."""
    new_for = {id(old): (old, new) for old, new in pairs}
    for module in _own_modules():
        for attribute, value in list(vars(module).items()):
            old, new = new_for.get(id(value), (None, None))
            if value is old:
                setattr(module, attribute, new)


def refuse_on_import() -> None:
    """Refuse the slow work in every module of SLOW_WORK loaded from now on (a fresh process)."""
    sys.meta_path.insert(0, _RefuseOnImport())


@contextmanager
def refusing_slow_work(site: Path = Path(__file__).parent) -> Iterator[None]:
    """Refuse the slow work in this process and, through PYTHONPATH, in the Python processes it
    starts, until the block ends; then put the real functions back everywhere."""
    finder = _RefuseOnImport()
    sys.meta_path.insert(0, finder)
    for name in SLOW_WORK.keys() & sys.modules.keys():
        _refuse_in(sys.modules[name])
    _swap([(_REAL[key], refusal(*key)) for key in _REAL])
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), before]))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
        sys.meta_path.remove(finder)
        _swap([(refusal(*key), _REAL[key]) for key in _REAL])
