"""Decode bandwidth of a Phi-3-mini-shaped model on the cuda target, at fp16 and int4.

Builds a `Phi3ForCausalLM` from `Phi3Config` defaults (Phi-3-mini's shape: hidden size 3072, 32
heads, MLP 8192, vocabulary 32064) with fewer layers (`--layers`, default 8) and random weights,
on the GPU (no download), saves it with a byte-level BPE tokenizer trained on the tiny space's
phrases, exports it with autotune's export stage (the onnxruntime-genai model builder) for the
target's execution provider at each precision, and measures each export with `autotune bench`.

Decode reads every weight once per new token, so the effective bandwidth is

    weight bytes read per token / decode time per token

where the bytes are those of the ONNX model's initializers (the packed int4 weights with their
scales for int4), counting one row of the embedding table, which a token only gathers. The
figure is set against the GPU's peak memory bandwidth (NVML: bus width x memory clock x 2).

    python -m bench.phi3_shaped --out /tmp/phi3-shaped                # on a GPU machine
    python -m bench.phi3_shaped --target cpu --device cpu --layers 1 --hidden-size 256 \\
        --intermediate-size 512 --vocab-size 4000 --heads 8 --out /tmp/p  # the script on a CPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for models and results")
    parser.add_argument("--layers", type=int, default=8, help="decoder layers (Phi-3-mini: 32)")
    parser.add_argument("--target", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--device", default="cuda", help="where the random model is built")
    parser.add_argument("--precisions", nargs="+", default=["fp16", "int4"])
    parser.add_argument("--int4-block-size", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    # Overrides of Phi3Config's defaults, for trying the script on a CPU with a small model.
    parser.add_argument("--hidden-size", type=int)
    parser.add_argument("--intermediate-size", type=int)
    parser.add_argument("--vocab-size", type=int)
    parser.add_argument("--heads", type=int)
    return parser.parse_args()


def build_model(args: argparse.Namespace, folder: Path) -> dict:
    """A random-weight Phi-3-mini-shaped model (fp16 safetensors) and a tokenizer in `folder`."""
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    from autotune.candidates.data import load_dataset
    from autotune.candidates.tiny import EOS_ID, PAD_ID, train_tokenizer
    from autotune.spaces import load_space

    shape = {
        "hidden_size": args.hidden_size,
        "intermediate_size": args.intermediate_size,
        "vocab_size": args.vocab_size,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.heads,
    }
    config = Phi3Config(
        num_hidden_layers=args.layers,
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        **{k: v for k, v in shape.items() if v is not None},
    )
    # Equal to max_position_embeddings (the default), else the builder takes the LongRoPE path.
    config.original_max_position_embeddings = config.max_position_embeddings
    start = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(args.device):
        model = Phi3ForCausalLM(config).to(torch.float16)
    model.save_pretrained(folder)
    dataset = load_dataset(load_space(REPO / "spaces" / "tiny.yaml", "cpu"))
    train_tokenizer(dataset, 1200).save_pretrained(folder)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"parameters": parameters, "seconds": time.perf_counter() - start}


def weight_bytes_per_token(model_dir: Path) -> tuple[int, int]:
    """(bytes of all initializers, bytes a decode step reads: all but the embedding table, of
    which one row)."""
    import numpy as np
    import onnx

    graph = onnx.load(model_dir / "model.onnx", load_external_data=False).graph
    gathered = {n.input[0] for n in graph.node if n.op_type == "Gather"}
    total = per_token = 0
    for tensor in graph.initializer:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        size = math.prod(tensor.dims) * itemsize
        total += size
        per_token += size // tensor.dims[0] if tensor.name in gathered and tensor.dims else size
    return total, per_token


def peak_bandwidth_gb_s() -> tuple[float | None, str]:
    """The GPU's peak memory bandwidth from NVML, and the GPU's name."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        bus_bits = pynvml.nvmlDeviceGetMemoryBusWidth(handle)
        clock_mhz = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
    except Exception as error:  # no NVML, no GPU
        return None, f"unknown ({type(error).__name__})"
    return bus_bits / 8 * clock_mhz * 1e6 * 2 / 1e9, name


def bench(args: argparse.Namespace, model_dir: Path, out: Path) -> dict:
    """`autotune bench MODEL_DIR` in a fresh process (as a user runs it); its JSON."""
    command = [
        sys.executable, "-m", "autotune", "bench", str(model_dir), "--target", args.target,
        "--json", str(out), "--prompt-tokens", str(args.prompt_tokens),
        "--new-tokens", str(args.new_tokens), "--warmup", "3", "--repeats", str(args.repeats),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    print(result.stdout, end="")
    if result.returncode != 0:
        raise SystemExit(f"autotune bench failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> int:
    args = parse_args()
    from autotune.candidates.export import ExportParams, export_onnx
    from bench.lib.results import write_result

    args.out.mkdir(parents=True, exist_ok=True)
    hf_dir = args.out / "hf"
    if not (hf_dir / "config.json").is_file():
        hf_dir.mkdir(exist_ok=True)
        built = build_model(args, hf_dir)
        print(
            f"built a Phi-3-mini-shaped model, {args.layers} layers, "
            f"{built['parameters'] / 1e6:.0f}M parameters, on {args.device} "
            f"in {built['seconds']:.1f} s"
        )
    peak, gpu = peak_bandwidth_gb_s()
    rows = []
    for precision in args.precisions:
        block = args.int4_block_size if precision == "int4" else None
        params = ExportParams(precision, args.target, int4_block_size=block)
        onnx_dir = args.out / f"{precision}-{args.target}"
        start = time.perf_counter()
        if not (onnx_dir / "genai_config.json").is_file():
            onnx_dir.mkdir(exist_ok=True)
            export_onnx(hf_dir, params, onnx_dir)
        exported_s = time.perf_counter() - start
        result = bench(args, onnx_dir, args.out / f"bench-{precision}.json")
        total, per_token = weight_bytes_per_token(onnx_dir)
        metrics = result["metrics"]
        decode_s = metrics["decode_ms.p50"] / 1e3
        row = {
            "precision": precision,
            "export_s": round(exported_s, 1),
            "weights_mb": round(total / 2**20, 1),
            "read_per_token_mb": round(per_token / 2**20, 1),
            "ttft_ms.p50": metrics["ttft_ms.p50"],
            "decode_ms.p50": metrics["decode_ms.p50"],
            "decode_ms.p90": metrics["decode_ms.p90"],
            "tokens_per_s.p50": metrics["tokens_per_s.p50"],
            "gpu_mem_mb": metrics.get("gpu_mem_mb"),
            "effective_gb_s": per_token / decode_s / 1e9,
        }
        row["share_of_peak"] = row["effective_gb_s"] / peak if peak else None
        rows.append(row)
    summary = {"layers": args.layers, "target": args.target, "gpu": gpu, "peak_gb_s": peak}
    (args.out / "phi3_shaped.json").write_text(json.dumps({**summary, "rows": rows}, indent=2))
    print(f"\n{gpu}: peak memory bandwidth {peak and round(peak)} GB/s; {args.layers} layers")
    header = "precision  export_s  weights_MB  read/token_MB  ttft_ms  decode_ms  GB/s  of_peak"
    print(header)
    for r in rows:
        share = f"{r['share_of_peak']:.0%}" if r["share_of_peak"] else "-"
        print(
            f"{r['precision']:<9}  {r['export_s']:>8}  {r['weights_mb']:>10}  "
            f"{r['read_per_token_mb']:>13}  {r['ttft_ms.p50']:>7.2f}  {r['decode_ms.p50']:>9.3f}  "
            f"{r['effective_gb_s']:>4.0f}  {share:>7}"
        )
    write_result("phi3_shaped", {**summary, "rows": rows}, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
