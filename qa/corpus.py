"""Reading a folder of documents: ids, titles, outlets and fingerprints."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .data import Document

EXTENSIONS = (".txt", ".md")
CATALOG = "catalog.json"


class CorpusError(ValueError):
    """A document folder that cannot be read; the message names the culprit."""


def doc_id_for(path: Path, root: Path) -> str:
    """``seeds/001_x.txt`` under ``seeds`` → ``001_x`` (FORMAT.md's doc_id)."""
    return path.relative_to(root).with_suffix("").as_posix()


def list_files(root: Path) -> list[Path]:
    """The readable documents under ``root``, in a stable order."""
    if not root.is_dir():
        raise CorpusError(f"document folder not found: {root}")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise CorpusError(f"no {' or '.join(EXTENSIONS)} files in {root}")
    return files


def fingerprint(data: bytes) -> str:
    """SHA-256 of a file's bytes: what the index remembers of each document."""
    return hashlib.sha256(data).hexdigest()


def load_catalog(root: Path) -> dict[str, dict]:
    """``catalog.json`` beside the documents: doc_id → {title, outlet, ...}."""
    path = root / CATALOG
    if not path.exists():
        return {}
    try:
        catalog = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{path}: not a valid JSON catalog ({exc})") from None
    if not isinstance(catalog, dict) or not all(isinstance(v, dict) for v in catalog.values()):
        raise CorpusError(f"{path}: expected an object of doc_id → {{title, outlet}}")
    return catalog


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def _is_headline(line: str) -> bool:
    words = line.split()
    return 3 <= len(words) <= 20 and len(line) <= 150 and not line.endswith((".", ",", ";", ":"))


def guess_title(text: str, fallback: str) -> str:
    """A headline among the opening lines (a Markdown heading, or a short line that is
    not a finished sentence), else the first sentence, else ``fallback``."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("![", "http://", "https://", "<"))][:5]
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            return heading.group(1)
        if _is_headline(line):
            return line
    if lines:
        from .chunking import split_sentences

        first = split_sentences(lines[0], 0, len(lines[0]))
        sentence = lines[0][first[0][0] : first[0][1]] if first else lines[0]
        return sentence if len(sentence) <= 160 else sentence[:157].rstrip() + "…"
    return fallback


def read_document(path: Path, root: Path, catalog: dict[str, dict] | None = None) -> Document:
    """One file as a :class:`Document`; text is the exact UTF-8 decoding of its bytes."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    doc_id = doc_id_for(path, root)
    meta = (catalog or {}).get(doc_id, {})
    return Document(
        doc_id=doc_id,
        text=text,
        title=str(meta.get("title") or guess_title(text, path.stem)),
        outlet=str(meta.get("outlet") or ""),
        path=path.relative_to(root).as_posix(),
        sha256=fingerprint(data),
    )


def read_corpus(root: Path) -> list[Document]:
    """Every ``.txt``/``.md`` document under ``root``, with catalog metadata where given."""
    root = Path(root)
    catalog = load_catalog(root)
    return [read_document(p, root, catalog) for p in list_files(root)]


def corpus_fingerprints(root: Path) -> dict[str, str]:
    """doc_id → SHA-256 for the folder as it is now (to detect a stale index)."""
    root = Path(root)
    return {doc_id_for(p, root): fingerprint(p.read_bytes()) for p in list_files(root)}
