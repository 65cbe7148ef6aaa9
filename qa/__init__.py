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


def stage_api(package: str, modules: dict[str, tuple[str, ...]]):
    """``__all__`` and ``__getattr__`` for a stage's package (qa/ingest, qa/index, ...).

    ``modules`` maps each module of the package to the public names it defines, so the
    package's ``__init__`` reads as a map of the stage.  A name is imported from its module
    on first use (``from qa.index import load``): importing one module of a stage never
    imports its siblings, and ``qa ask`` loads only what it uses (issue 14; see also the
    import-direction test in tests/test_package.py)."""
    import importlib

    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(importlib.import_module(package), name, value)  # found once, then a plain attribute
        return value

    return sorted(where), __getattr__
