"""Train the answer reader: a small cross-encoder that reads (question, sentence) and says
whether the sentence answers the question (one logit) and where the answer phrase is
(start/end logits over the sentence's tokens; [CLS] when there is none).

    python train/reader.py                       # what `make train` runs
    python train/reader.py --questions 2000      # a quick smoke run

It starts from the first 4 layers of the bundled all-MiniLM-L6-v2 and trains on 27,000
questions of SQuAD v1.1 train (CC BY-SA 4.0), articles of the ``reader`` split only (see
train/data.py).  The result is exported to ONNX, quantised to int8 and written to
``qa/models/reader/``.  Seeds are fixed and the matrix products are float32 by default, so
any CPU trains the same model; on a quiet 2-core CPU it takes about 50 minutes (the
word-piece table stays frozen: its dense optimiser step would cost a third more time for no
measured gain).  Four layers on 27,000 questions read as well on held-out articles as three
on all ~73k, in well under half the float32 time (train/trial-2026-11-28-depth.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from train.data import (  # noqa: E402  (pysbd only when called)
    Example,
    article_terms,
    auc,
    content_words,
    load_articles,
    paragraphs,
    reader_examples,
    sentence_of,
    swap_question,
)

OUT = ROOT / "qa" / "models" / "reader"
MAX_LENGTH = 96


def base_model_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 (``QA_READER_BASE`` names another copy of it)."""
    if os.environ.get("QA_READER_BASE"):
        return Path(os.environ["QA_READER_BASE"])
    from qa.index.embedding import resolve_model

    return Path(resolve_model("all-MiniLM-L6-v2"))


def build_model(layers: int):
    import torch
    from transformers import AutoConfig, AutoModel

    folder = base_model_dir()
    config = AutoConfig.from_pretrained(folder, num_hidden_layers=layers)
    encoder = AutoModel.from_pretrained(folder, config=config, add_pooling_layer=False)

    class Reader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.relevance = torch.nn.Linear(config.hidden_size, 1)
            self.span = torch.nn.Linear(config.hidden_size, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            rel = self.relevance(h[:, 0]).squeeze(-1)
            se = self.span(h)
            # Padding can never be a start or an end.
            neg = (1 - attention_mask).to(se.dtype) * -1e4
            return rel, se[..., 0] + neg, se[..., 1] + neg

    return Reader()


def tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(base_model_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_LENGTH, strategy="only_second")
    return tok


def encode(tok, batch: list[Example]):
    """Token ids, masks, type ids and the span's token positions (0 = [CLS] = none)."""
    enc = tok.encode_batch([(e.question, e.sentence) for e in batch])
    width = max(len(x.ids) for x in enc)
    ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    starts = np.zeros(len(batch), dtype=np.int64)
    ends = np.zeros(len(batch), dtype=np.int64)
    for i, (e, x) in enumerate(zip(batch, enc)):
        n = len(x.ids)
        ids[i, :n], mask[i, :n], types[i, :n] = x.ids, x.attention_mask, x.type_ids
        if e.span is None:
            continue
        a, b = e.span
        st = en = None
        for t, (seq, (o0, o1)) in enumerate(zip(x.sequence_ids, x.offsets)):
            if seq != 1 or o1 <= o0:
                continue
            if st is None and o1 > a:
                st = t
            if o0 < b:
                en = t
        if st is not None and en is not None and en >= st:
            starts[i], ends[i] = st, en
        else:
            starts[i] = ends[i] = -100  # answer cut by truncation: no span loss
    return ids, mask, types, starts, ends


def batches_of(examples: list[Example], batch_size: int) -> list[list[int]]:
    """Whole questions per batch (so a question's sentences compete in one softmax), about
    ``batch_size`` pairs each, questions of similar length together: little padding."""
    groups: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(e.group, []).append(i)
    order = sorted(
        groups.values(),
        key=lambda rows: (
            sum(len(examples[i].question) + len(examples[i].sentence) for i in rows) / len(rows),
            rows[0],
        ),
    )
    out, cur = [], []
    for rows in order:
        cur.extend(rows)
        if len(cur) >= batch_size:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


# Whole (~65 lines): the training loop and its schedule, read in one place.
def train(
    examples: list[Example],
    layers: int,
    epochs: float,
    batch_size: int,
    lr: float,
    seed: int,
    listwise: float = 0.0,
    device: str = "cpu",
    log_every: int = 50,
    freeze_embeddings: bool = False,
    bf16: bool = False,
    frozen_layers: int = 0,
):
    """Fine-tune the reader.  Loss: binary cross-entropy of each pair's relevance, plus
    ``listwise`` × the softmax cross-entropy of the answer sentence among its question's
    sentences, plus the answer phrase's start/end cross-entropy on positives."""
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    model = build_model(layers).to(device)
    model.train()
    tok = tokenizer()
    rng = random.Random(seed)
    batches = batches_of(examples, batch_size)
    total = int(len(batches) * epochs)
    schedule = []
    while len(schedule) < total:
        b = batches[:]
        rng.shuffle(b)
        schedule.extend(b)
    schedule = schedule[:total]
    if freeze_embeddings:
        # The word-piece table is 2/3 of the weights: its dense gradient and optimiser step
        # cost more CPU time per batch than the layers' own.
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    if frozen_layers:
        # The embeddings and the first layers as pretrained: the backward pass stops above them.
        model.encoder.embeddings.requires_grad_(False)
        for layer in model.encoder.encoder.layer[:frozen_layers]:
            layer.requires_grad_(False)
    opt = torch.optim.AdamW([w for w in model.parameters() if w.requires_grad], lr=lr, weight_decay=0.01)
    warm = max(total // 20, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1)))
    )
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    started = time.time()
    seen = 0
    for step, rows in enumerate(schedule, 1):
        batch = [examples[i] for i in rows]
        ids, mask, types, st, en = (torch.from_numpy(a).to(device) for a in encode(tok, batch))
        labels = torch.tensor([float(e.label) for e in batch], device=device)
        # bf16 matrix products where the CPU has them (AVX-512 BF16, AMX): ~1.3x a step here;
        # weights, optimiser and losses stay float32.
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            rel, s_log, e_log = model(ids, mask, types)
        rel, s_log, e_log = rel.float(), s_log.float(), e_log.float()
        loss = bce(rel, labels) + 0.5 * (ce(s_log, st) + ce(e_log, en))
        if listwise:
            loss = loss + listwise * group_softmax_loss(rel, [e.group for e in batch], labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        seen += len(batch)
        if step % log_every == 0 or step == total:
            el = time.time() - started
            print(
                f"step {step}/{total}  loss {loss.item():.3f}  {seen / el:.1f} pairs/s  {el / 60:.1f} min", flush=True
            )
    model.eval()
    return model.to("cpu")


def group_softmax_loss(rel, groups: list[int], labels):
    """Mean over the batch's questions of -log softmax(relevance)[answer sentence]."""
    import torch

    slot: dict[int, int] = {}
    row, col, used = [], [], []
    for g in groups:
        r = slot.setdefault(g, len(slot))
        if r == len(used):
            used.append(0)
        row.append(r)
        col.append(used[r])
        used[r] += 1
    row_t = torch.tensor(row, device=rel.device)
    col_t = torch.tensor(col, device=rel.device)
    grid = torch.full((len(used), max(used)), -1e4, device=rel.device, dtype=rel.dtype).index_put((row_t, col_t), rel)
    gold = torch.full((len(used),), -100, dtype=torch.long, device=rel.device)
    hit = labels > 0.5
    if not bool(hit.any()):
        return rel.sum() * 0.0  # no answer sentence in this batch: nothing to rank
    gold[row_t[hit]] = col_t[hit]
    return torch.nn.functional.cross_entropy(grid, gold, ignore_index=-100)


def export(model, out: Path) -> dict:
    """ONNX (fp32, then int8 weights incl. the embedding table) and the tokenizer into ``out``."""
    import shutil

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "reader-fp32.onnx"
    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["relevance", "start_logits", "end_logits"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
            | {
                "relevance": {0: "batch"},
                "start_logits": {0: "batch", 1: "tokens"},
                "end_logits": {0: "batch", 1: "tokens"},
            },
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(
        str(fp32),
        str(out / "reader.onnx"),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gemm", "Gather"],
    )
    fp32.unlink()
    expose_state(out / "reader.onnx")
    shutil.copyfile(base_model_dir() / "tokenizer.json", out / "tokenizer.json")
    outputs = [o.name for o in onnx.load(str(out / "reader.onnx")).graph.output]
    return {"file": "reader.onnx", "bytes": (out / "reader.onnx").stat().st_size, "outputs": outputs}


def expose_state(path: Path) -> bool:
    """Add the [CLS] state that the relevance head reads as a fourth output, ``state``
    (batch × hidden), to the ONNX reader at ``path`` (in place): train/fusion.py fits the
    answerability probe on it.  Found by walking back from ``relevance`` to the Gather that
    takes token 0, in the float graph as in the int8 one.  False when it is there already."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    if any(o.name == "state" for o in graph.output):
        return False
    made_by = {o: n for n in graph.node for o in n.output}
    name = "relevance"
    while made_by[name].op_type != "Gather":
        name = made_by[name].input[0]
    graph.node.append(onnx.helper.make_node("Identity", [name], ["state"], name="state"))
    graph.output.append(onnx.helper.make_tensor_value_info("state", onnx.TensorProto.FLOAT, ["batch", "hidden"]))
    onnx.save(model, str(path))
    return True


def heldout_figures(score_fn, per_article: dict[str, list], limit: int = 2000, seed: int = 7) -> dict:
    """On held-out articles (their :class:`Paragraph` lists): how often the answer sentence
    is ranked first among the sentences of its paragraph, the answer phrase's exact match /
    F1 on that sentence, and two answerability figures (ROC AUC of the best relevance):
    the question against its paragraph plus the 8 sentences of other paragraphs that share
    most words with it, versus against those 8 alone (its paragraph removed); and the answer
    sentence against the question versus against its swapped twin (:func:`swap_question`)."""
    from qa.evaluation import squad_em_f1

    rng = random.Random(seed)
    paras = [(t, p) for t in sorted(per_article) for p in per_article[t]]
    items = [(t, p, q) for t, p in paras for q in p.qas if len(p.sentences) > 1]
    rng.shuffle(items)
    terms = {t: article_terms(per_article[t]) for t in per_article}
    words = {
        t: [(p, content_words(p.context[a:b]), p.context[a:b]) for p in per_article[t] for a, b in p.sentences]
        for t in per_article
    }
    top1 = n = 0
    em = f1 = 0.0
    with_para, without, gold, twins = [], [], [], []
    for title, p, q in items[:limit]:
        ans = q["answers"][0]
        si = sentence_of(p, ans["start"], ans["start"] + len(ans["text"]))
        if si is None:
            continue
        sents = [p.context[a:b] for a, b in p.sentences]
        qwords = content_words(q["question"])
        near = sorted(
            (
                (len(qwords & w), text)
                for other, w, text in words[title]
                if other is not p and ans["text"].lower() not in text.lower()
            ),
            key=lambda x: -x[0],
        )[:8]
        near = [text for _, text in near]
        rel, phrases = score_fn(q["question"], sents + near)
        rel = np.asarray(rel)
        n += 1
        top1 += int(np.argmax(rel[: len(sents)]) == si)
        golds = [a["text"] for a in q["answers"]]
        e, f = squad_em_f1(phrases[si], golds)
        em += e
        f1 += f
        if near:
            with_para.append(float(rel.max()))
            without.append(float(rel[len(sents) :].max()))
        twin = swap_question(q["question"], sents[si], terms[title], rng)
        if twin:
            gold.append(float(rel[si]))
            twins.append(float(np.asarray(score_fn(twin, [sents[si]])[0])[0]))
    return {
        "questions": n,
        "sentence_top1_in_paragraph": round(top1 / n, 4),
        "phrase_em_given_sentence": round(em / n, 4),
        "phrase_f1_given_sentence": round(f1 / n, 4),
        "auc_paragraph_removed": round(auc(with_para, without), 4),
        "auc_swapped_question": round(auc(gold, twins), 4),
    }


NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 and Arm names


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def bf16_wanted(precision: str, device: str, flags: set[str] | None = None) -> bool:
    """Whether to train with bf16 matrix products: asked for, or "auto" on a CPU with native
    bf16 instructions (AVX-512 BF16, AMX, Arm BF16).  Not torch's own check: oneDNN says yes
    on any AVX-512 CPU and emulates bf16 there, which trained 2.2x *slower* than float32
    (15.6 against 33.8 pairs/s on a 2-core Xeon without AVX-512 BF16, 2026-11-28)."""
    if precision != "auto":
        return precision == "bf16"
    if device != "cpu":
        return False
    return bool((cpu_flags() if flags is None else flags) & NATIVE_BF16_FLAGS)


# Whole (~75 lines): the script's steps in order (arguments, the runs, the report).
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=27000, help="training questions (0: all of the split, ~73k)")
    ap.add_argument(
        "--paragraph-negatives", type=int, default=1, help="other sentences of the answer's paragraph per question"
    )
    ap.add_argument(
        "--hard-negatives", type=int, default=1, help="best-overlapping sentences of other paragraphs per question"
    )
    ap.add_argument(
        "--swapped-negatives",
        type=float,
        default=0.0,
        help="share of questions that also get a swapped twin against their answer sentence",
    )
    ap.add_argument("--listwise", type=float, default=1.0, help="weight of the per-question softmax loss")
    ap.add_argument(
        "--train-embeddings", action="store_true", help="also fine-tune the word-piece table (~30%% slower on CPU)"
    )
    ap.add_argument("--device", default="cpu", help="torch device for training (the shipped model is trained on cpu)")
    ap.add_argument("--layers", type=int, default=4, help="MiniLM layers the reader keeps (of 6)")
    ap.add_argument("--frozen-layers", type=int, default=0, help="first layers (and the embeddings) kept as pretrained")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    ap.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="fp32",
        help="matrix products in training (auto: bf16 where the CPU supports it natively, ~1.3x faster there"
        " but not the same model; fp32: the shipped model on any CPU)",
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    t0 = time.time()
    articles = load_articles(split="reader")
    examples = reader_examples(
        articles,
        args.questions or sys.maxsize,
        seed=args.seed,
        paragraph_negatives=args.paragraph_negatives,
        hard_negatives=args.hard_negatives,
        swapped=args.swapped_negatives,
    )
    print(f"{len(examples)} pairs from {len(articles)} articles ({time.time() - t0:.0f} s)", flush=True)
    bf16 = bf16_wanted(args.precision, args.device)
    print(f"matrix products in {'bf16' if bf16 else 'float32'} (--precision {args.precision})", flush=True)
    model = train(
        examples,
        args.layers,
        args.epochs,
        args.batch_size,
        args.lr,
        args.seed,
        args.listwise,
        args.device,
        freeze_embeddings=not args.train_embeddings,
        bf16=bf16,
        frozen_layers=args.frozen_layers,
    )
    trained = time.time() - t0
    info = export(model, args.out)
    from qa.answer.reader import Reader

    reader = Reader(args.out, threads=1)
    held_articles = load_articles(split="heldout")
    held = heldout_figures(lambda q, s: reader.read(q, s), {t: paragraphs(rows) for t, rows in held_articles.items()})
    record = {
        "base": "all-MiniLM-L6-v2 (bundled), first %d layers" % args.layers,
        "data": "SQuAD v1.1 train (CC BY-SA 4.0), 'reader' split of articles (train/data.py)",
        "command": "python train/reader.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": date.today().isoformat(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "bf16": bf16,
        "max_length": MAX_LENGTH,
        "pairs": len(examples),
        "questions_used": len({e.group for e in examples}),
        "articles": len(articles),
        "train_minutes": round(trained / 60, 1),
        "total_minutes": round((time.time() - t0) / 60, 1),  # with examples, export and held-out scoring
        "heldout": held,
        **info,
    }
    (args.out / "reader.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
