"""The steps of bench/cuda_device_run.sh on a GPU machine that reaches no package registry.

    python3 bench/lib/cuda_device_setup.py WHEEL_DIR SITE_DIR SRC_DIR  install, link autotune
    python3 bench/lib/cuda_device_setup.py --library-path              torch's CUDA library folders
    python3 bench/lib/cuda_device_setup.py --report                    versions, CUDA, bitsandbytes
    python3 bench/lib/cuda_device_setup.py --trials TRIALS_CSV         a study's trials, compactly

Installing:
- The CUDA onnxruntime pair (onnxruntime-gpu, onnxruntime-genai-cuda) is always installed into
  SITE_DIR: on PYTHONPATH it shadows the CPU onnxruntime the machine may have.
- Every other wheel is installed only when the machine cannot import its module already, so the
  machine's own builds (numpy and what was compiled against it) stay in use.
- SRC_DIR gets an `autotune` package made of links to this checkout, laid out as pyproject's
  package-dir maps it (autotune.search to search/ and so on), unless autotune is importable
  already.

Prints what it installed and what it found; exits 1 when pip fails.
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ALWAYS = ("onnxruntime_gpu", "onnxruntime_genai_cuda")
# Distribution (as in a wheel's file name) -> the module it provides, where they differ.
MODULES = {
    "nvidia_ml_py": "pynvml",
    "pydantic_core": "pydantic_core",
    "markdown_it_py": "markdown_it",
    "python_dateutil": "dateutil",
    "fonttools": "fontTools",
    "pillow": "PIL",
    "charset_normalizer": "charset_normalizer",
    "pyyaml": "yaml",
}


def distribution(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower()


def module_of(dist: str) -> str:
    return MODULES.get(dist, dist)


def missing(dist: str) -> bool:
    return importlib.util.find_spec(module_of(dist)) is None


def subpackages() -> dict[str, str]:
    """Each sub-package of autotune and its folder in the checkout, from pyproject's
    package-dir ("autotune.search" = "search" -> search: search)."""
    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {
        name.removeprefix("autotune."): folder
        for name, folder in setup["package-dir"].items()
        if name.startswith("autotune.")
    }


def link_autotune(src: Path) -> None:
    package = src / "autotune"
    package.mkdir(parents=True, exist_ok=True)
    for entry in (REPO / "autotune").iterdir():  # the command line: cli, commands/, console/, ...
        target = package / entry.name
        if entry.name != "__pycache__" and not target.exists():
            target.symlink_to(entry)
    for name, folder in subpackages().items():
        target = package / name
        if not target.exists():
            target.symlink_to(REPO / folder)


def main(wheel_dir: Path, site: Path, src: Path) -> int:
    wheels = sorted(wheel_dir.glob("*.whl"))
    chosen = [w for w in wheels if distribution(w) in ALWAYS or missing(distribution(w))]
    present = sorted({distribution(w) for w in wheels} - {distribution(w) for w in chosen})
    print(f"wheels carried: {len(wheels)}; already on the machine: {', '.join(present) or '-'}")
    if chosen:
        print(f"installing into {site}: {', '.join(distribution(w) for w in chosen)}")
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        result = subprocess.run([*command, "--target", str(site), *map(str, chosen)])
        if result.returncode != 0:
            return 1
    if importlib.util.find_spec("autotune") is None:
        link_autotune(src)
        print(f"autotune linked into {src}")
    return 0


def library_path() -> str:
    """The folders of the CUDA libraries that torch's wheels bring (nvidia/*/lib)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return ""
    site = Path(spec.origin).parents[1]
    found = glob.glob(str(site / "nvidia" / "**" / "lib*.so*"), recursive=True)
    return ":".join(sorted({os.path.dirname(p) for p in found}))


REPORTED = (
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-genai-cuda",
    "optuna",
    "onnx",
)


def report() -> int:
    """Versions, and whether torch, onnxruntime(-genai) and bitsandbytes can use the GPU."""
    versions = {}
    for name in REPORTED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "-"
    print("python", platform.python_version(), versions)
    try:
        import onnxruntime as ort
        import onnxruntime_genai as og
        import torch

        print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available())
        print("onnxruntime", ort.get_available_providers(), "genai cuda", og.is_cuda_available())
        import bitsandbytes.functional as bnb

        w = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
        q, state = bnb.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
        error = (bnb.dequantize_4bit(q, state) - w).abs().max().item()
        print(f"bitsandbytes NF4 on cuda: max round-trip error {error:.3f}")
    except Exception as error:
        print("environment check failed:", type(error).__name__, error)
    return 0


TRIAL_COLUMNS = (
    "number",
    "state",
    "method",
    "precision",
    "accuracy",
    "ttft_ms.p50",
    "decode_ms.p50",
    "gpu_mem_mb",
    "size_mb",
    "train_peak_mem_mb",
    "train_s",
    "seconds.measure",
    "error",
)


def trials(csv: Path) -> int:
    if not csv.is_file():
        print(f"no {csv}")
        return 1
    import pandas as pd

    table = pd.read_csv(csv)
    pd.set_option("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60)
    print(table[[c for c in TRIAL_COLUMNS if c in table.columns]].to_string(index=False))
    return 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments == ["--library-path"]:
        print(library_path())
    elif arguments == ["--report"]:
        raise SystemExit(report())
    elif len(arguments) == 2 and arguments[0] == "--trials":
        raise SystemExit(trials(Path(arguments[1])))
    elif len(arguments) == 3:
        raise SystemExit(main(*map(Path, arguments)))
    else:
        raise SystemExit(__doc__)
