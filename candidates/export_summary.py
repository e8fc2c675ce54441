"""What an export did: which weights ended in which precision, read back from the ONNX graph.

The builder's precision is a request, not a description. With tied embeddings the 0.18 builder
shares one matrix between the embedding table and the LM head (`shared_embeddings`): at int4 it
quantises that matrix to 4 bits for both; at int8 it logs "Gather only supports 4 bits
quantization" and keeps the embedding table in float32; the `*_last` int4 algorithms keep the
head (and so a shared embedding table) at 8 bits. The summary reads the graph (without its
weights) so it says what happened, and keeps the builder's warnings beside it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

SUMMARY = "autotune_export.json"
_MATMULS = ("MatMul", "MatMulNBits", "Gemm")
_GATHERS = ("Gather", "GatherBlockQuantized")


def _weights(graph) -> dict[str, Any]:
    """Weight tensors by every name they go by: initializers, and the outputs of the Transpose
    and Reshape nodes a shared embedding table reads them through."""
    found = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type in ("Transpose", "Reshape", "Cast") and node.input[0] in found:
            found[node.output[0]] = found[node.input[0]]
    return found


def _precision(node, weights: dict[str, Any]) -> tuple[str | None, str]:
    """The precision of the weight a MatMul or Gather node reads (None if it reads none), and
    that weight's name."""
    import onnx

    read = [weights[name] for name in node.input if name in weights]
    source = read[0].name if read else ""
    if node.op_type in ("MatMulNBits", "GatherBlockQuantized"):
        bits = next((a.i for a in node.attribute if a.name == "bits"), 4)
        return f"int{bits}", source
    if not read:
        return None, ""
    name = onnx.TensorProto.DataType.Name(read[0].data_type).lower()
    return {"float": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(name, name), source


def summarise(model_dir: Path) -> dict[str, Any]:
    """{embed_tokens, lm_head, layers: {precision: count}, shared_embeddings, warnings}."""
    import onnx

    model = onnx.load(str(model_dir / "model.onnx"), load_external_data=False)
    weights = _weights(model.graph)
    embed = head = None
    shared = False
    layers: Counter[str] = Counter()
    for node in model.graph.node:
        if node.op_type in _GATHERS and "embed_tokens" in node.name:
            embed, source = _precision(node, weights)
            shared = source.startswith("lm_head")
        elif node.op_type in _MATMULS and "lm_head" in node.name:
            head, _ = _precision(node, weights)
        elif node.op_type in _MATMULS and "/layers." in node.name:
            precision, _ = _precision(node, weights)
            if precision:
                layers[precision] += 1
    log = model_dir / "autotune_builder.log"
    lines = log.read_text().splitlines() if log.is_file() else []
    warnings = list(dict.fromkeys(line for line in lines if "ERROR" in line or "WARNING" in line))
    return {
        "embed_tokens": embed,
        "lm_head": head,
        "layers": dict(layers),
        "shared_embeddings": shared,
        "warnings": warnings[:5],
    }


def write_summary(model_dir: Path) -> dict[str, Any]:
    summary = summarise(model_dir)
    (model_dir / SUMMARY).write_text(json.dumps(summary, indent=2))
    return summary


def read_summary(model_dir: Path) -> dict[str, Any]:
    """The summary written at export, or read from the graph for an older export."""
    path = Path(model_dir) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else summarise(Path(model_dir))
