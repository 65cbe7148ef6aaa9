"""Try reader training settings side by side on a GPU (one process per setting), scored on
the held-out articles — how `train/reader.py`'s defaults were chosen.

    python train/sweep.py bundle             # here: write .gpu/ (pre-split paragraphs, base model in fp16)
    python train/sweep.py run [NAME ...]     # on the GPU machine, from the repository root

The bundle holds what the GPU machine lacks (pysbd, the bundled model): the ``reader`` and
``heldout`` splits already cut into sentences, and the first LAYERS layers of all-MiniLM-L6-v2
(4, the shipped reader's; the two sweep records of 2026-11-26 trained 3).
Each setting trains with `train/reader.py`'s own code (``--device cuda``) and is scored with
its held-out figures (torch fp32; the shipped model is int8 ONNX trained on the CPU).
Results: one JSON per setting under $OUT (or /tmp/out).  squad-dev is never read.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUNDLE = ROOT / ".gpu"
BASE = Path("/tmp/sweep-base")
LAYERS = 4

# name: (questions, paragraph negatives, hard negatives, listwise weight, epochs, lr, frozen word
# pieces, share of questions with a swapped twin)
SETTINGS = {
    "S0-50k": (50000, 1, 1, 1.0, 1.0, 2e-4, True, 0.0),
    "S1-50k-sw05": (50000, 1, 1, 1.0, 1.0, 2e-4, True, 0.5),
    "S2-50k-sw1": (50000, 1, 1, 1.0, 1.0, 2e-4, True, 1.0),
    "S3-42k-sw05": (42000, 1, 1, 1.0, 1.0, 2e-4, True, 0.5),
    "S4-40k-sw1": (40000, 1, 1, 1.0, 1.0, 2e-4, True, 1.0),
    "S5-50k-p0-sw1": (50000, 0, 1, 1.0, 1.0, 2e-4, True, 1.0),
    "tiny": (300, 1, 1, 1.0, 1.0, 2e-4, True, 0.5),  # a check of the script itself (run it on CPU)
}
# (train/sweep-2026-11-26.json holds the first sweep, whose settings chose questions, lr,
# listwise and frozen word pieces.)


def bundle() -> None:
    from safetensors.torch import load_file, save_file

    from train.data import load_articles, paragraphs
    from train.reader import base_model_dir

    BUNDLE.mkdir(exist_ok=True)
    out = {}
    for split in ("reader", "heldout"):
        arts = load_articles(split=split)
        out[split] = {t: [[p.context, p.sentences, p.qas] for p in paragraphs(rows)] for t, rows in arts.items()}
    with gzip.open(BUNDLE / "data.json.gz", "wt", encoding="utf-8") as fh:
        json.dump(out, fh)
    base, dst = base_model_dir(), BUNDLE / "base"
    dst.mkdir(exist_ok=True)
    weights = load_file(str(base / "model.safetensors"))
    # fp16 and the first LAYERS layers only: the bundle must travel in 64 MiB.
    keep = {
        k: (v.half() if v.is_floating_point() else v)
        for k, v in weights.items()
        if not any(f"layer.{i}." in k for i in range(LAYERS, 12))
    }
    save_file(keep, str(dst / "model.safetensors"))
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(base / f, dst / f)
    print(f"wrote {BUNDLE}/ (add '/.gpu/' to .git/info/exclude; carry it to the GPU machine)")


def _paragraphs():
    from train.data import Paragraph

    with gzip.open(BUNDLE / "data.json.gz", "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    return {
        split: {
            t: [Paragraph(t, c, tuple(tuple(x) for x in s), tuple(q)) for c, s, q in rows] for t, rows in arts.items()
        }
        for split, arts in raw.items()
    }


def run_one(name: str, out: Path, device: str, limit: int) -> None:
    os.environ.setdefault("QA_READER_BASE", str(BASE))
    import numpy as np
    import torch

    from qa.answer.reader import Reader
    from train import reader as R
    from train.data import examples_from

    torch.set_num_threads(1)
    questions, pn, hn, lw, epochs, lr, frozen, swapped = SETTINGS[name]
    data = _paragraphs()
    examples = examples_from(data["reader"], questions, 13, pn, hn, swapped)
    t0 = time.time()
    model = R.train(examples, LAYERS, epochs, 32, lr, 13, lw, device, log_every=10**9, freeze_embeddings=bool(frozen))
    took = time.time() - t0
    model = model.to(device)
    tok = R.tokenizer()

    def score(question, sents):
        enc = tok.encode_batch([(question, s) for s in sents])
        width = max(len(e.ids) for e in enc)
        arrays = [np.zeros((len(enc), width), np.int64) for _ in range(3)]
        for i, e in enumerate(enc):
            n = len(e.ids)
            arrays[0][i, :n], arrays[1][i, :n], arrays[2][i, :n] = e.ids, e.attention_mask, e.type_ids
        with torch.no_grad():
            rel, st, en = (x.float().cpu().numpy() for x in model(*(torch.from_numpy(a).to(device) for a in arrays)))
        rs = [Reader.reading_of(e, s, float(rel[i]), st[i], en[i]) for i, (e, s) in enumerate(zip(enc, sents))]
        return rel, [s[r.phrase[0] : r.phrase[1]] if r.phrase else "" for s, r in zip(sents, rs)]

    held = R.heldout_figures(score, data["heldout"], limit=limit)
    result = {"name": name, "setting": SETTINGS[name], "pairs": len(examples), "gpu_train_s": round(took, 1), **held}
    (out / f"{name}.json").write_text(json.dumps(result), encoding="utf-8")
    if name in os.environ.get("SWEEP_KEEP", "").split(","):
        # The trained weights minus the frozen word-piece table (fp16): small enough to fetch.
        keep = {k: v.half().cpu() for k, v in model.state_dict().items() if "word_embeddings" not in k}
        torch.save(keep, out / f"{name}.pt")
    print(json.dumps(result), flush=True)


def run(names: list[str]) -> None:
    from safetensors.torch import load_file, save_file

    BASE.mkdir(exist_ok=True)
    weights = load_file(str(BUNDLE / "base" / "model.safetensors"))
    save_file(
        {k: (v.float() if v.is_floating_point() else v) for k, v in weights.items()}, str(BASE / "model.safetensors")
    )
    for f in (BUNDLE / "base").iterdir():
        if f.name != "model.safetensors":
            shutil.copyfile(f, BASE / f.name)
    out = Path(os.environ.get("OUT", "/tmp/out"))
    out.mkdir(parents=True, exist_ok=True)
    device = os.environ.get("SWEEP_DEVICE", "cuda")
    ctx = mp.get_context("spawn")
    limit = int(os.environ.get("SWEEP_LIMIT", "2000"))
    names = names or [n for n in SETTINGS if n != "tiny"]
    procs = [ctx.Process(target=run_one, args=(n, out, device, limit)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    # One results file (few files come back from the GPU machine).
    results = [json.loads((out / f"{n}.json").read_text()) for n in names if (out / f"{n}.json").exists()]
    for n in names:
        (out / f"{n}.json").unlink(missing_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["bundle"]:
        bundle()
    elif sys.argv[1:2] == ["run"]:
        run(sys.argv[2:])
    else:
        sys.exit(__doc__)
