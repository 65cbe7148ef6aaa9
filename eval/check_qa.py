#!/usr/bin/env python3
"""Check a QA set (JSONL, see /work/shared/eval/FORMAT.md) against a corpus folder.

Usage: python3 check_qa.py QA.jsonl [CORPUS_DIR]

CORPUS_DIR defaults to /work/main/seeds if it exists, else /work/shared/seeds.
doc_id = path of a .txt file relative to CORPUS_DIR, without extension, '/' as separator.

Checks: valid JSON per line with the required keys and types, unique ids, every doc_id
exists, each answer occurs in the normalised text of at least one listed doc (and each
listed doc contains at least one answer), each span
is [doc_id, start, end] with the doc listed in doc_ids, 0 <= start < end <= len(text),
and the span text contains an answer (normalised); out-of-scope lines (empty answers)
have empty doc_ids and no spans.  Answers are checked under two normalisations:
SQuAD's (ASCII punctuation only) and one that also drops Unicode punctuation such as
curly quotes and dashes; an answer must match under both.

Prints one line per problem and a summary; exits 1 on any problem.
"""
import json
import os
import re
import string
import sys
import unicodedata

REQUIRED = ("id", "question", "answers", "doc_ids")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = set(string.punctuation)


def _strip(text, unicode_punct):
    if unicode_punct:
        return "".join(ch for ch in text
                       if ch not in _ASCII_PUNCT and not unicodedata.category(ch).startswith("P"))
    return "".join(ch for ch in text if ch not in _ASCII_PUNCT)


def normalise(text, unicode_punct=False):
    """Lower-case, remove punctuation, remove a/an/the, fold white space (SQuAD style)."""
    text = _strip(text.lower(), unicode_punct)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains(haystack, needle):
    """True when needle occurs in haystack under both normalisations."""
    return all(normalise(needle, u) in normalise(haystack, u) for u in (False, True))


def load_corpus(root):
    docs = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".txt"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)[: -len(".txt")].replace(os.sep, "/")
            with open(path, encoding="utf-8") as fh:
                docs[rel] = fh.read()
    return docs


def check(qa_path, corpus_dir):
    problems = []
    docs = load_corpus(corpus_dir)
    if not docs:
        problems.append(f"{corpus_dir}: no .txt documents found")
    seen = {}
    n_lines = n_answerable = n_oos = 0

    def bad(where, msg):
        problems.append(f"{qa_path}:{where}: {msg}")

    with open(qa_path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n_lines += 1
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            bad(lineno, f"invalid JSON ({exc})")
            continue
        if not isinstance(rec, dict):
            bad(lineno, "line is not a JSON object")
            continue
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            bad(lineno, f"missing keys {missing}")
            continue
        qid = rec["id"]
        where = f"{lineno} [{qid}]"
        if not isinstance(qid, str) or not qid:
            bad(where, "id must be a non-empty string")
        elif qid in seen:
            bad(where, f"duplicate id (first on line {seen[qid]})")
        else:
            seen[qid] = lineno
        if not isinstance(rec["question"], str) or not rec["question"].strip():
            bad(where, "question must be a non-empty string")
        answers, doc_ids = rec["answers"], rec["doc_ids"]
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            bad(where, "answers must be a list of non-empty strings")
            continue
        if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
            bad(where, "doc_ids must be a list of strings")
            continue
        if len(set(doc_ids)) != len(doc_ids):
            bad(where, "duplicate doc_ids")
        spans = rec.get("spans", [])

        if not answers:  # out of scope
            n_oos += 1
            if doc_ids:
                bad(where, "out-of-scope question (no answers) must have empty doc_ids")
            if spans:
                bad(where, "out-of-scope question must have no spans")
            continue

        n_answerable += 1
        if not doc_ids:
            bad(where, "answers given but doc_ids is empty")
            continue
        for d in doc_ids:
            if d not in docs:
                bad(where, f"unknown doc_id {d!r}")
        known = [d for d in doc_ids if d in docs]
        for a in answers:
            if not normalise(a):
                bad(where, f"answer {a!r} is empty after normalisation")
            elif known and not any(contains(docs[d], a) for d in known):
                bad(where, f"answer {a!r} not found in any listed doc")
        for d in known:
            if not any(contains(docs[d], a) for a in answers):
                bad(where, f"doc {d} contains none of the answers")

        if not isinstance(spans, list):
            bad(where, "spans must be a list")
            continue
        span_docs = set()
        for sp in spans:
            if (not isinstance(sp, list) or len(sp) != 3 or not isinstance(sp[0], str)
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in sp[1:])):
                bad(where, f"malformed span {sp!r} (want [doc_id, start, end])")
                continue
            d, start, end = sp
            if d not in doc_ids:
                bad(where, f"span doc {d!r} not in doc_ids")
            if d not in docs:
                continue
            span_docs.add(d)
            if not (0 <= start < end <= len(docs[d])):
                bad(where, f"span {sp!r} out of range (doc length {len(docs[d])})")
                continue
            text = docs[d][start:end]
            if not any(contains(text, a) for a in answers):
                bad(where, f"span {sp!r} text {text[:60]!r}... contains no answer")
        if spans:
            for d in known:
                if d not in span_docs:
                    bad(where, f"doc {d} listed in doc_ids but has no span")

    summary = (f"{qa_path}: {n_lines} questions ({n_answerable} answerable, {n_oos} out of scope), "
               f"{len(docs)} docs in {corpus_dir}: {len(problems)} problem(s)")
    return problems, summary


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 2
    qa_path = argv[1]
    if len(argv) > 2:
        corpus = argv[2]
    else:
        corpus = "/work/main/seeds" if os.path.isdir("/work/main/seeds") else "/work/shared/seeds"
    problems, summary = check(qa_path, corpus)
    for p in problems:
        print(p)
    print(summary)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
