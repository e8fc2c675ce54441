"""Check the import contract (pyproject: [tool.importlinter]) on the source tree.

import-linter finds a package's modules by walking the package's folder; autotune's sub-packages
live in the top-level folders the design names (pyproject's package-dir), so the check runs on
a copy of the sources laid out as the installed package: <tmp>/autotune/{search,reports,...}.
Run it by hand with `.venv/bin/python tests/layers.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def package_folders(repo: Path = REPO) -> dict[str, str]:
    """Package -> its folder, as pyproject's [tool.setuptools.package-dir] maps them."""
    setuptools = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    return dict(setuptools["package-dir"])


def assemble(dest: Path, repo: Path = REPO) -> Path:
    """Copy the package's Python sources into `dest/autotune/` as installed; the package."""
    package = dest / "autotune"
    for name, folder in package_folders(repo).items():
        sub = name.removeprefix("autotune").removeprefix(".")
        shutil.copytree(
            repo / folder,
            package / sub,
            ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.jsonl", "data"),
            dirs_exist_ok=True,
        )
    return package


def lint_imports(tree: Path, repo: Path = REPO) -> subprocess.CompletedProcess:
    """Run `lint-imports` with the project's contract on the assembled `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, ahead of the editable install
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    command = [sys.executable, "-c", code, str(repo / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        assemble(Path(tmp))
        result = lint_imports(Path(tmp))
    print(result.stdout + result.stderr)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
