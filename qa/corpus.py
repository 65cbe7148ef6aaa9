"""Reading a folder of documents: ids, text, titles, outlets, dates, URLs and fingerprints.

Every supported file (``.txt``, ``.md``, ``.html``, ``.pdf``; see :mod:`qa.extract`)
becomes a :class:`~qa.data.Document` whose ``text`` is what the index stores and
quotes.  Metadata comes, in this order of precedence, from ``catalog.json`` beside the
documents (doc_id → {title, outlet, date, url}), then from the file itself (HTML
``<title>``/``og:*`` tags, Markdown front matter, PDF metadata), then from a guess
(the headline among the opening lines).

A file that cannot be read (bad UTF-8, a broken PDF) is reported and skipped by
:func:`scan`; the rest of the folder is still read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .data import Document
from .extract import EXTENSIONS, ExtractError, extract

CATALOG = "catalog.json"


class CorpusError(ValueError):
    """A document folder that cannot be read; the message names the culprit."""


@dataclass(frozen=True)
class Skipped:
    """A file left out of the index, and why."""

    path: str  # relative to the document folder
    sha256: str
    reason: str

    def message(self) -> str:
        return f"skipped {self.path}: {self.reason}"


def doc_id_for(path: Path, root: Path) -> str:
    """``seeds/001_x.txt`` under ``seeds`` → ``001_x`` (FORMAT.md's doc_id)."""
    return path.relative_to(root).with_suffix("").as_posix()


def list_files(root: Path) -> list[Path]:
    """The supported documents under ``root`` (hidden files and folders left out), in a stable order."""
    root = Path(root)
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
        raise CorpusError(f"no {', '.join(EXTENSIONS)} files in {root}")
    return files


def fingerprint(data: bytes) -> str:
    """SHA-256 of a file's bytes: what the index remembers of each document."""
    return hashlib.sha256(data).hexdigest()


def load_catalog(root: Path) -> dict[str, dict]:
    """``catalog.json`` beside the documents: doc_id → {title, outlet, date, url, ...}."""
    path = Path(root) / CATALOG
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


def _field(catalog_entry: dict, found: dict[str, str], key: str) -> str:
    value = catalog_entry.get(key)
    if value not in (None, ""):
        from .extract import normalise_date

        value = normalise_date(value) if key == "date" else value
        return " ".join(str(value).split())
    return found.get(key, "")


def document_from_bytes(data: bytes, path: Path, root: Path, catalog: dict[str, dict] | None = None) -> Document:
    """One file's bytes as a :class:`Document`; raises :class:`ExtractError` (a reason)."""
    extracted = extract(path, data)
    doc_id = doc_id_for(path, root)
    entry = (catalog or {}).get(doc_id, {})
    meta = extracted.meta
    return Document(
        doc_id=doc_id,
        text=extracted.text,
        title=_field(entry, meta, "title") or guess_title(extracted.text, path.stem),
        outlet=_field(entry, meta, "outlet"),
        path=path.relative_to(root).as_posix(),
        sha256=fingerprint(data),
        format=extracted.format,
        pages=extracted.pages,
        date=_field(entry, meta, "date"),
        url=_field(entry, meta, "url"),
    )


def read_document(path: Path, root: Path, catalog: dict[str, dict] | None = None) -> Document:
    """One file as a :class:`Document`; a file that cannot be read raises :class:`CorpusError`
    naming it."""
    try:
        return document_from_bytes(Path(path).read_bytes(), Path(path), Path(root), catalog)
    except ExtractError as exc:
        raise CorpusError(f"{path}: {exc}") from None


def scan(root: Path) -> tuple[list[Document], list[Skipped]]:
    """Every readable document under ``root`` and every file skipped (with the reason).

    Raises :class:`CorpusError` when the folder holds no supported file, or none that
    can be read."""
    root = Path(root)
    catalog = load_catalog(root)
    documents: list[Document] = []
    skipped: list[Skipped] = []
    owner: dict[str, str] = {}
    for path in list_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:
            skipped.append(Skipped(rel, "", f"cannot be read ({exc.strerror or exc})"))
            continue
        doc_id = doc_id_for(path, root)
        if doc_id in owner:
            skipped.append(Skipped(rel, fingerprint(data), f"same document id {doc_id!r} as {owner[doc_id]}"))
            continue
        try:
            documents.append(document_from_bytes(data, path, root, catalog))
        except ExtractError as exc:
            skipped.append(Skipped(rel, fingerprint(data), str(exc)))
            continue
        owner[doc_id] = rel
    if not documents:
        detail = "; ".join(s.message() for s in skipped[:3]) + ("; …" if len(skipped) > 3 else "")
        raise CorpusError(f"no readable documents in {root} ({detail})")
    return documents, skipped


def read_corpus(root: Path) -> list[Document]:
    """Every readable document under ``root``, with its metadata (unreadable files left out)."""
    return scan(root)[0]


def corpus_fingerprints(root: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every supported file under ``root`` as it is now
    (to detect a stale index)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): fingerprint(p.read_bytes()) for p in list_files(root)}
