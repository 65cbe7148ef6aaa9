"""Cited, extractive question answering over a folder of documents.

Pipeline: corpus → chunking → embedding → index → retrieval → answer → evaluation.
Every answer is a set of verbatim quotes (``text == document.text[start:end]``).
"""

import os as _os

__version__ = "0.1.0"

# Nothing leaves the machine.  Set here, when the package is first imported and so before
# any library that would call home is (every entry point — CLI, app, Ray workers, tests —
# imports ``qa`` first), and forced: the product promises it whatever the shell says.
OFFLINE_ENV = {
    # onnxruntime (1.32) starts 1DS telemetry when its library loads: a thread that looks up
    # mobile.events.data.microsoft.com and posts events (and keeps a SQLite queue under
    # ~/.cache/Microsoft/DeveloperTools).  disable_telemetry_events() comes too late; this
    # variable, read by the native library at load, stops it (tests/test_security.py).
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "RAY_USAGE_STATS_ENABLED": "0",
    "DO_NOT_TRACK": "1",
}
_os.environ.update(OFFLINE_ENV)
