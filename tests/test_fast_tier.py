"""The fast tier (`pytest -m "not slow"`): it imports every module of the package, and a test in
it that reaches slow work fails (tests/fast_tier/refuse_slow_work.py, installed by conftest)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys

import pytest

from autotune.candidates.cache import StageCache
from autotune.candidates.export import ExportParams
from autotune.candidates.train import train_adapter
from tests.fast_tier.refuse_slow_work import SLOW_WORK, SlowWorkRefused, refusal
from tests.layers import REPO, package_folders


def package_modules() -> list[str]:
    """Every module of the package, found in the folders pyproject maps its packages to; not
    `__main__`, which runs the command line when imported."""
    names = []
    for package, folder in package_folders().items():
        root = REPO / folder
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            inits = [root.joinpath(*parts[:i], "__init__.py") for i in range(len(parts))]
            if parts[-1] == "__main__" or not all(init.is_file() for init in inits):
                continue
            names.append(".".join((package, *parts[: -1 if parts[-1] == "__init__" else None])))
    return names


def holders(value: object) -> set[str]:
    """The loaded modules of this repository (the package's and the tests') that hold `value`,
    under any name."""
    return {
        module.__name__
        for module in list(sys.modules.values())
        if str(getattr(module, "__file__", "")).startswith(str(REPO))
        and any(held is value for held in vars(module).values())
    }


def test_every_module_of_the_package_imports():
    names = package_modules()
    for package in package_folders():
        assert package in names and any(name.startswith(f"{package}.") for name in names)
    assert "autotune.candidates.train_loop" in names and "autotune.search.workers" in names
    for name in names:
        importlib.import_module(name)


def test_each_entry_point_of_slow_work_is_refused_wherever_it_was_imported():
    """In its own module, in the modules that imported it by name (most before this test), and
    in this test module, which imported train_adapter when it was collected."""
    for name in package_modules():
        importlib.import_module(name)
    for module, functions in SLOW_WORK.items():
        for name in functions:
            where = re.escape(f"({module}.{name}): mark it slow")
            with pytest.raises(SlowWorkRefused, match=f"{where}$"):
                getattr(importlib.import_module(module), name)()
            stand_in = refusal(module, name)
            assert holders(stand_in) - {module}, f"no module imports {name}"
            assert holders(stand_in.__wrapped__) == set()
    assert train_adapter is refusal("autotune.candidates.train", "train_adapter")
    with pytest.raises(SlowWorkRefused, match=r"^tests/test_fast_tier\.py::test_each.* trains"):
        train_adapter()  # the message names the test


def test_code_that_catches_exceptions_does_not_hide_the_refusal(tmp_path):
    from autotune.candidates.preflight import preflight  # turns any Exception into its own

    exports = [ExportParams("fp32", "cpu")]
    with pytest.raises(SlowWorkRefused, match="exports a model"):
        preflight(tmp_path, "base", exports, StageCache(tmp_path / "cache"), {})


def test_the_python_processes_a_fast_test_starts_refuse_too():
    code = "from autotune.evaluators.runtime import load_model; load_model('absent', 'cpu')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "SlowWorkRefused: tests/test_fast_tier.py::test_the_python_processes" in done.stderr
    assert "(autotune.evaluators.runtime.load_model): mark it slow" in done.stderr


INNER = """
import pytest
from autotune.evaluators.runtime import ModelFolderError, load_model

@pytest.fixture(scope="session")
def measured(tmp_path_factory):
    return load_model(tmp_path_factory.mktemp("m") / "absent", "cpu")

def test_fast_with_a_fixture_that_measures(measured):
    pass

def test_fast_measures(tmp_path):
    load_model(tmp_path, "cpu")

@pytest.mark.slow
def test_slow_measures(tmp_path):
    with pytest.raises(ModelFolderError, match="no such folder"):  # the real function ran
        load_model(tmp_path / "absent", "cpu")

def test_fast_measures_again(tmp_path):
    load_model(tmp_path, "cpu")
"""


def test_only_tests_not_marked_slow_are_refused(tmp_path):
    """A pytest session with the project's configuration and conftest, on four tests."""
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this process's refusal is not passed on
    command = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml")]
    options = ["-p", "tests.conftest", "-p", "no:cacheprovider", "-q", "-rA", "--tb=line"]
    done = subprocess.run(
        [*command, *options, str(tmp_path / "test_inner.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    outcomes = {
        line.split("::")[1].split()[0]: line.split()[0]
        for line in done.stdout.splitlines()
        if line.split(" ", 1)[0] in ("PASSED", "FAILED", "ERROR") and "::" in line
    }
    assert outcomes == {
        "test_fast_with_a_fixture_that_measures": "ERROR",
        "test_fast_measures": "FAILED",
        "test_slow_measures": "PASSED",
        "test_fast_measures_again": "FAILED",
    }, done.stdout + done.stderr
    assert done.stdout.count("loads an ONNX model to measure it") >= 3
