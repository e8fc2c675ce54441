"""autotune: search LoRA fine-tuning and ONNX export settings for the Pareto-best small model.

Importing the package disables onnxruntime's telemetry before anything imports onnxruntime:
both onnxruntime and onnxruntime-genai look up a remote host at import unless told not to.
"""

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
