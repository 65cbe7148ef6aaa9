"""Reading a folder of documents: ids, text, titles, outlets, dates, URLs and fingerprints.

Every supported file (``.txt``, ``.md``, ``.html``, ``.pdf``, ``.docx``; see :mod:`qa.ingest.extract`)
becomes a :class:`~qa.data.Document` whose ``text`` is what the index stores and
quotes.  Metadata comes, in this order of precedence, from ``catalog.json`` beside the
documents (doc_id → {title, outlet, date, url}), then from the file itself (HTML
``<title>``/``og:*`` tags, Markdown front matter, PDF metadata), then from a guess
(the headline among the opening lines).

A file that cannot be read (bad UTF-8, a broken PDF) is reported and skipped by
:func:`scan`; the rest of the folder is still read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..data import Document
from ..errors import DocumentError
from .extract import EXTENSIONS, ExtractError, extract

CATALOG = "catalog.json"


class CorpusError(DocumentError):
    """A document folder that cannot be read; the message names the culprit."""


@dataclass(frozen=True)
class Skipped:
    """A file left out of the index, and why."""

    path: str  # relative to the document folder
    sha256: str
    reason: str

    def message(self) -> str:
        return f"skipped {printable(self.path)}: {self.reason}"


def doc_id_for(path: Path, root: Path) -> str:
    """``seeds/001_x.txt`` under ``seeds`` → ``001_x`` (FORMAT.md's doc_id)."""
    return path.relative_to(root).with_suffix("").as_posix()


# Files larger than this are refused unread (QA_MAX_DOCUMENT_MB / Settings.max_document_mb):
# indexing time and memory grow with a document's size, and no article is this long.
MAX_DOCUMENT_MB = 20.0

OUTSIDE = "a symbolic link to a file outside the document folder (not followed)"
OUTSIDE_DIR = "a symbolic link to a folder outside the document folder (not followed)"
LINKED_DIR = "a symbolic link to a folder (not followed; its files are read where they are)"
BROKEN = "a symbolic link to nothing readable"
NOT_REGULAR = "not a regular file"


# Characters that change how text is shown without being seen: direction controls
# (an RTL override shows a title reversed), zero-width characters, the BOM.
_FORMAT_CHARS = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")


def clean_label(text: str) -> str:
    """A title or outlet as shown: invisible formatting characters removed, spacing folded.
    (Quotes are never changed: they are verbatim and warned about instead.)"""
    return " ".join(_FORMAT_CHARS.sub("", text).split())


def printable(name: str) -> str:
    """A file name on one visible line: control and direction characters as \\uXXXX escapes."""
    return _FORMAT_CHARS.sub(
        lambda m: f"\\u{ord(m.group()):04x}", _CONTROL_CHARS.sub(lambda m: ascii(m.group())[1:-1], name)
    )


def _name_problem(rel: str) -> str:
    bad = _CONTROL_CHARS.search(rel) or _FORMAT_CHARS.search(rel)
    return f"its name holds an invisible or control character (U+{ord(bad.group()):04X})" if bad else ""


def _inside(real_root: str, target: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def walk(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The supported files under ``root`` and the entries refused at the boundary.

    The document folder is a boundary: the walk never follows a symbolic link to a
    folder, and a symbolic link to a file is read only when its target lies inside the
    folder.  Refused entries come back as (relative path, reason).  Hidden files and
    folders are left out.  Stable order."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"document folder not found: {root}")
    real_root = os.path.realpath(root)
    files: list[Path] = []
    refused: list[tuple[str, str]] = []

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            path = here / name
            if path.is_symlink():
                inside = _inside(real_root, os.path.realpath(path))
                refused.append((rel(path), LINKED_DIR if inside else OUTSIDE_DIR))
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in EXTENSIONS:
                continue
            if _name_problem(rel(path)):  # would break one-line output and citations
                refused.append((rel(path), _name_problem(rel(path))))
                continue
            if path.is_symlink():
                target = os.path.realpath(path)
                if not _inside(real_root, target):
                    refused.append((rel(path), OUTSIDE))
                elif not os.path.isfile(target):
                    refused.append((rel(path), BROKEN))
                else:
                    files.append(path)
            elif path.is_file():
                files.append(path)
            else:  # a FIFO, socket or device: reading it could block or never end
                refused.append((rel(path), NOT_REGULAR))
    files.sort()
    refused.sort()
    return files, refused


def list_files(root: Path) -> list[Path]:
    """The supported documents under ``root`` (hidden files and folders, and symbolic
    links leaving the folder, left out), in a stable order."""
    files, refused = walk(root)
    if not files and not refused:
        raise CorpusError(f"no {', '.join(EXTENSIONS)} files in {root}")
    return files


class TooLarge(OSError):
    """A file over the size limit (not read)."""


def _open_inside(root: Path, path: Path) -> int:
    """A read-only descriptor of ``path``, a regular file inside ``root``, opened one
    component at a time without following any symbolic link (so a link swapped in after
    :func:`walk` looked cannot lead out of the folder).  An allowed link to a file inside
    the folder is opened at its target."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(path)
    if not _inside(real_root, target):
        raise PermissionError(errno.EACCES, OUTSIDE, str(path))
    parts = Path(os.path.relpath(target, real_root)).parts
    nofollow = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real_root, os.O_RDONLY | os.O_DIRECTORY | nofollow)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
            os.close(fd)
            fd = nxt
        # O_NONBLOCK: a FIFO swapped in must not block the read.
        file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise PermissionError(errno.EACCES, NOT_REGULAR, str(path))
    return file_fd


def read_inside(root: Path, path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path`` (a file :func:`walk` found under ``root``); raises
    :class:`TooLarge` over ``max_bytes`` without reading, OSError when it cannot be read."""
    fd = _open_inside(root, path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise TooLarge(
                errno.EFBIG, f"{size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit per document", str(path)
            )
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:  # grew while being read
        raise TooLarge(errno.EFBIG, f"over the {max_bytes / 1e6:g} MB limit per document", str(path))
    return data


def file_fingerprint(root: Path, path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (any size, bounded memory)."""
    h = hashlib.sha256()
    with os.fdopen(_open_inside(root, path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def max_document_bytes(max_mb: float | None = None) -> int:
    if max_mb is None:
        raw = os.environ.get("QA_MAX_DOCUMENT_MB")
        try:
            max_mb = float(raw) if raw else MAX_DOCUMENT_MB
        except ValueError:
            raise CorpusError(f"QA_MAX_DOCUMENT_MB={raw!r}: not a number of megabytes") from None
    if not max_mb > 0:
        raise CorpusError(f"the per-document size limit must be above 0 MB, not {max_mb}")
    return int(max_mb * 1_000_000)


def fingerprint(data: bytes) -> str:
    """SHA-256 of a file's bytes: what the index remembers of each document."""
    return hashlib.sha256(data).hexdigest()


def catalog_bytes(root: Path) -> bytes | None:
    """The bytes of ``catalog.json`` beside the documents (None when there is none); a
    catalog that is a link out of the folder is refused like any document."""
    path = Path(root) / CATALOG
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return read_inside(root, path, max_document_bytes())
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def load_catalog(root: Path) -> dict[str, dict]:
    """``catalog.json`` beside the documents: doc_id → {title, outlet, date, url, ...}."""
    path = Path(root) / CATALOG
    data = catalog_bytes(root)
    if data is None:
        return {}
    try:
        catalog = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{path}: not a valid JSON catalog ({exc})") from None
    if not isinstance(catalog, dict) or not all(isinstance(v, dict) for v in catalog.values()):
        raise CorpusError(f"{path}: expected an object of doc_id → {{title, outlet}}")
    return catalog


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def _is_headline(line: str) -> bool:
    words = line.split()
    return 3 <= len(words) <= 20 and len(line) <= 150 and not line.endswith((".", ",", ";", ":"))


# The title is looked for in the opening of a document only (linear in nothing else).
TITLE_WINDOW = 4000


def guess_title(text: str, fallback: str) -> str:
    """A headline among the opening lines (a Markdown heading, or a short line that is
    not a finished sentence), else the first sentence, else ``fallback``.  Only the first
    :data:`TITLE_WINDOW` characters are read, so a huge one-line document costs no more."""
    lines = [ln.strip() for ln in text[:TITLE_WINDOW].splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("![", "http://", "https://", "<"))][:5]
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            return heading.group(1)
        if _is_headline(line):
            return line
    if lines:
        from .chunking import split_sentences

        first = split_sentences(lines[0], 0, min(len(lines[0]), 1000))
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
        title=clean_label(_field(entry, meta, "title") or guess_title(extracted.text, path.stem)) or path.stem,
        outlet=clean_label(_field(entry, meta, "outlet")),
        path=path.relative_to(root).as_posix(),
        sha256=fingerprint(data),
        format=extracted.format,
        pages=extracted.pages,
        date=_field(entry, meta, "date"),
        url=_field(entry, meta, "url"),
    )


def scan(
    root: Path, max_mb: float | None = None, known: dict[str, Document] | None = None
) -> tuple[list[Document], list[Skipped]]:
    """Every readable document under ``root`` and every file skipped (with the reason):
    unreadable files, files over the size limit (``max_mb``, default
    :data:`MAX_DOCUMENT_MB` or ``QA_MAX_DOCUMENT_MB``), and symbolic links that leave the
    folder or lead to folders.

    ``known``: documents read before (an index's), by path; a file whose bytes are the
    same (SHA-256) is taken from there instead of being extracted again (PDF and HTML
    extraction, title guessing).  The caller vouches that the catalog and the extraction
    code are the same as then.

    Raises :class:`CorpusError` when the folder holds no supported file, or none that
    can be read."""
    root = Path(root)
    limit = max_document_bytes(max_mb)
    catalog = load_catalog(root)
    documents: list[Document] = []
    files, refused = walk(root)
    skipped: list[Skipped] = [Skipped(rel, "", reason) for rel, reason in refused]
    if not files and not refused:
        raise CorpusError(f"no {', '.join(EXTENSIONS)} files in {root}")
    owner: dict[str, str] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            data = read_inside(root, path, limit)
        except TooLarge as exc:
            skipped.append(Skipped(rel, file_fingerprint(root, path), f"too large ({exc.strerror})"))
            continue
        except OSError as exc:
            skipped.append(Skipped(rel, "", f"cannot be read ({exc.strerror or exc})"))
            continue
        doc_id = doc_id_for(path, root)
        if doc_id in owner:
            skipped.append(Skipped(rel, fingerprint(data), f"same document id {doc_id!r} as {owner[doc_id]}"))
            continue
        before = (known or {}).get(rel)
        if before is not None and before.sha256 == fingerprint(data):
            documents.append(before)
            owner[doc_id] = rel
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
    (to detect a stale index); "" for entries that cannot be read or are refused at the
    folder's boundary (as :func:`scan` records them)."""
    root = Path(root)
    files, refused = walk(root)
    out = {rel: "" for rel, _ in refused}
    for p in files:
        try:
            out[p.relative_to(root).as_posix()] = file_fingerprint(root, p)
        except OSError:
            out[p.relative_to(root).as_posix()] = ""
    return out
