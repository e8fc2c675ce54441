"""The Olive 0.13 workflow bench/vs_olive.py runs beside autotune: LoRA -> MergeAdapterWeights ->
ModelBuilder int4 on the same rows and knobs, as an Olive config (a dict written to JSON)."""

from __future__ import annotations

from pathlib import Path

# Olive's data and dtype per row: (max_seq_len, pad_to_max_len, torch_dtype).
OLIVE_VARIANTS = {
    "unpadded": (256, False, "float32"),  # the reference config's data handling
    "padded": (64, True, "float32"),  # the earlier comparison's (the longest row is 48 tokens)
    "unpadded-bf16": (256, False, "bfloat16"),  # Olive's default dtype
}


def olive_config(
    base: Path, train_file: Path, out: Path, variant: str, max_steps: int | None = None
) -> dict:
    """Olive's LoRA -> merge -> ModelBuilder int4 workflow on the same rows and knobs."""
    template = "### Text: {phrase}\n### The tone is:\n{tone}"
    max_seq_len, padded, dtype = OLIVE_VARIANTS[variant]
    limit = {"max_steps": max_steps} if max_steps is not None else {}
    return {
        "input_model": {"type": "HfModel", "model_path": str(base)},
        "systems": {
            "local_system": {
                "type": "LocalSystem",
                "accelerators": [
                    {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}
                ],
            }
        },
        "data_configs": [
            {
                "name": "train_data",
                "type": "HuggingfaceContainer",
                "load_dataset_config": {
                    "data_name": "json",
                    "data_files": [str(train_file)],
                    "split": "train",
                },
                # One example per sequence. Olive's default strategy joins all rows and cuts them
                # into max_seq_len chunks: 512 rows became 7 steps instead of 64.
                "pre_process_data_config": {
                    "text_template": template,
                    "strategy": "line-by-line",
                    "max_seq_len": max_seq_len,
                    "pad_to_max_len": padded,
                },
                "dataloader_config": {"batch_size": 8},
            }
        ],
        "passes": {
            "lora": {
                "type": "LoRA",
                "r": 16,
                "alpha": 32,
                "lora_dropout": 0.05,
                "target_modules": ["q_proj", "v_proj"],
                "torch_dtype": dtype,
                "train_data_config": "train_data",
                "training_args": {
                    "learning_rate": 4e-4,
                    "num_train_epochs": 1,
                    "per_device_train_batch_size": 8,
                    "gradient_checkpointing": False,
                    "seed": 0,
                    **limit,
                },
            },
            "merge": {"type": "MergeAdapterWeights"},
            "builder": {"type": "ModelBuilder", "precision": "int4"},
        },
        "host": "local_system",
        "target": "local_system",
        "output_dir": str(out),
        "cache_dir": str(out / "cache"),
        "log_severity_level": 3,
    }
