"""int8 arithmetic that is the same on every CPU: the reader's, and the ``onnx-int8`` encoder's.

ONNX Runtime multiplies an int8 model's weights (the reader, ``train/reader.py``; the
bulk encoder of ``index --backend onnx-int8``, ``qa/index/embedding.py``: dynamic
quantisation, signed weights) with unsigned 8-bit activations.  On x86 CPUs with a VNNI
dot-product instruction (Intel Ice Lake / Sapphire Rapids and later servers, Alder Lake
and later desktops, AMD Zen 4) the products are summed exactly.  On x86 CPUs without one
(AVX2 only: AMD Zen 2 and 3, older Intel) its kernel adds pairs of products in 16 bits,
which saturate: there the reader's logits moved by up to ~0.4 and the threshold chosen on
exact arithmetic no longer held (on an AMD EPYC the seeds' calibration sets gave coverage
0.935 and abstention 0.708 instead of 0.957 and 0.750; ONNX Runtime issue 6004), and the
encoder's vectors fell to cosine 0.960 of the float model's on the export's probes (0.984
exact).

The same weights shifted into unsigned bytes (``w + 128`` with zero point ``zp + 128``:
the same numbers) take ONNX Runtime's unsigned-by-unsigned kernel, which is exact on
every CPU — at 10–16 ms more a question on a 2-core AMD EPYC (README).  ``QA_READER_INT8``
chooses for both models: ``auto`` (default: the shifted weights where the CPU lacks VNNI),
``exact`` (always) or ``native`` (never: the fastest, approximate without VNNI).
"""

from __future__ import annotations

import hashlib
from collections import Counter
import os
import platform
from pathlib import Path

from ..errors import SettingsError

CHOICES = ("auto", "exact", "native")
# /proc/cpuinfo flags of an exact u8 x s8 dot product that ONNX Runtime's kernels use.
EXACT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
# Part of a cached file's name: a change to :func:`shifted` must not reuse older files.
SHIFT_VERSION = 1
# Exact models of a kind kept in the cache (the last used), for side-by-side installs and indexes.
KEPT_MODELS = 3


def choice() -> str:
    """``QA_READER_INT8`` (``auto`` when unset); another value is a one-line error."""
    value = os.environ.get("QA_READER_INT8", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise SettingsError(f"QA_READER_INT8={value!r}: expected one of {', '.join(CHOICES)}")
    return value


def cpu_sums_exactly(cpuinfo: str | None = None, machine: str | None = None) -> bool:
    """Whether ONNX Runtime's signed-weight int8 kernel is exact on this CPU: any non-x86
    CPU, or an x86 one whose flags name a VNNI instruction.  An x86 CPU whose flags
    cannot be read counts as inexact (the exact weights are only slower)."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return True
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & EXACT_FLAGS)


def use_exact_weights() -> bool:
    """Whether an int8 model should run on the shifted (unsigned) weights here."""
    c = choice()
    return c == "exact" or (c == "auto" and not cpu_sums_exactly())


def exact_model(model_file: Path, kind: str = "reader") -> Path | bytes:
    """The model with its integer-matmul weights shifted to unsigned bytes: a cached file
    (made once per model, beside the user's other caches, named by ``kind``) or, where no
    cache can be written, the model's bytes."""
    model_file = Path(model_file)
    digest = hashlib.sha1(model_file.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"{kind}-exact-v{SHIFT_VERSION}-{digest}.onnx"
    if cached.is_file():
        try:
            os.utime(cached)  # its time says when it was last used (what pruning keeps)
        except OSError:
            pass
        return cached
    data = shifted(model_file)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)  # atomic: a concurrent reader sees the old state or the whole file
    except OSError:
        return data
    prune(cached.parent, keep=cached, kind=kind)
    return cached


def prune(folder: Path, keep: Path, kind: str = "reader", most: int = KEPT_MODELS) -> list[Path]:
    """Remove cached exact models of ``kind`` that cannot or will probably not be used again:
    those of an older :data:`SHIFT_VERSION`, and beyond the ``most`` last used of this
    version (a new model, from ``make train``, an upgrade or a new index's export, leaves
    ~19–23 MB behind each time).  Returns the files removed; one that cannot be removed stays."""
    current = f"{kind}-exact-v{SHIFT_VERSION}-"
    mine, removed = [], []
    for f in folder.glob(f"{kind}-exact-*.onnx"):
        if f == keep:
            continue
        if f.name.startswith(current):
            mine.append(f)
        else:
            removed.append(f)
    try:
        mine.sort(key=lambda f: f.stat().st_mtime, reverse=True)
    except OSError:
        mine = []
    removed += mine[max(most - 1, 0) :]
    gone = []
    for f in removed:
        try:
            f.unlink()
            gone.append(f)
        except OSError:
            pass
    return gone


def cache_dir() -> Path:
    """``$QA_CACHE``, else ``$XDG_CACHE_HOME/qa``, else ``~/.cache/qa``."""
    if os.environ.get("QA_CACHE"):
        return Path(os.environ["QA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa"


def shifted(model_file: Path) -> bytes:
    """The model's bytes with every signed weight (and zero point) of a ``MatMulInteger``
    moved by +128 into an unsigned byte: the integer products are the same numbers."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_file))
    tensors = {t.name: t for t in model.graph.initializer}
    # Only where both the weights and their zero point are stored tensors (so both move);
    # a tensor also used anywhere else stays as it is.
    uses = Counter(name for node in model.graph.node for name in node.input)
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or len(node.input) < 4:
            continue
        pair = [tensors.get(node.input[1]), tensors.get(node.input[3])]
        if any(t is None or t.data_type != onnx.TensorProto.INT8 or uses[t.name] > 1 for t in pair):
            continue
        for t in pair:
            unsigned = (numpy_helper.to_array(t).astype(np.int16) + 128).astype(np.uint8)
            t.CopyFrom(numpy_helper.from_array(unsigned, t.name))
    return model.SerializeToString()
