"""A file's bytes → the text the index stores, its page starts and its own metadata.

One function per format, each built on a well-kept library:

* ``.txt``: the file decoded as UTF-8, exactly (so offsets are those of the file, as
  eval/FORMAT.md counts them).
* ``.md`` / ``.markdown``: the same, after its YAML front matter (PyYAML
  ``safe_load``) and the blank lines that follow it.  The front matter is metadata,
  not content: it is *not* part of the stored text, so it can never be quoted, and
  offsets count from the body (a file without front matter is stored whole).
* ``.html`` / ``.htm``: readable text (Beautiful Soup with lxml): scripts, styles,
  navigation, forms and hidden elements dropped; when the page marks its content with
  ``<main>`` or a single ``<article>``, only that; one paragraph per block element,
  separated by blank lines; headings marked as in Markdown (``## Heading``) so the
  cleaning rules treat them alike.  Metadata from ``og:*`` / ``article:*`` tags, ``<title>``
  and the canonical link.
* ``.pdf``: each page's text (pypdf), pages separated by a blank line; ``pages`` holds
  the offset where each page starts, so any offset maps to its page.

Whatever the format, the stored text is the only text that counts: quotes are slices
of it and ``python -m qa show DOC_ID`` prints it.  A file that cannot be read raises
:class:`ExtractError` with a short reason (the caller adds the file name).
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable


class ExtractError(ValueError):
    """A file whose text cannot be extracted; the message is the reason, without the name."""


@dataclass(frozen=True)
class Extracted:
    """What one file holds: its text, the start of each page, and metadata it declares."""

    text: str
    format: str  # "text", "markdown", "html" or "pdf"
    pages: tuple[int, ...] = ()  # PDF only: offset in ``text`` where each page starts
    meta: dict[str, str] = field(default_factory=dict)  # title, outlet, date, url (those found)


META_KEYS = ("title", "outlet", "date", "url")


def _clean_meta(meta: dict) -> dict[str, str]:
    """Keep the known keys with non-empty one-line string values."""
    out = {}
    for key in META_KEYS:
        value = meta.get(key)
        if key == "date":
            value = normalise_date(value)
        if value is None or isinstance(value, (dict, list, tuple, set, bool)):
            continue
        value = " ".join(str(value).split())
        if value:
            out[key] = value[:500]
    return out


def normalise_date(value) -> str | None:
    """A date as ``YYYY-MM-DD`` when it is one (or an ISO timestamp), else as given."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = " ".join(str(value).split())
    try:
        return datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        return text


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExtractError(f"not valid UTF-8 (byte {exc.start})") from None


def _require_text(text: str, what: str = "no text") -> str:
    if not text.strip():
        raise ExtractError(what)
    return text


# ---------------------------------------------------------------- plain text


def extract_text(data: bytes) -> Extracted:
    return Extracted(_require_text(_decode_utf8(data), "empty file"), "text")


# ---------------------------------------------------------------- Markdown

# An opening "---" line, the YAML, and a closing "---" (or "...") line.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)

_FRONT_MATTER_KEYS = {
    "title": ("title", "headline"),
    "outlet": ("outlet", "source", "site", "site_name", "publisher", "publication"),
    "date": ("date", "published", "published_at", "pubdate", "date_published"),
    "url": ("url", "canonical_url", "canonical", "link", "permalink"),
}


def split_front_matter(text: str) -> tuple[dict[str, str], int]:
    """Metadata from a leading YAML front-matter block, and where the body starts.

    Only a block that parses (PyYAML ``safe_load``) to a mapping counts as front
    matter; anything else (say, a document opening with a horizontal rule) is content
    and the body starts at 0."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}, 0
    if not isinstance(data, dict):
        return {}, 0
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    meta = {}
    for key, names in _FRONT_MATTER_KEYS.items():
        for name in names:
            if lowered.get(name) not in (None, ""):
                meta[key] = lowered[name]
                break
    return _clean_meta(meta), match.end()


def extract_markdown(data: bytes) -> Extracted:
    text = _decode_utf8(data)
    meta, body_start = split_front_matter(text)
    body = text[body_start:]
    if body_start:  # blank lines between the front matter and the first line are not content either
        body = body[len(body) - len(body.lstrip("\r\n")) :]
    body = _require_text(body, "no text after the front matter" if meta else "empty file")
    return Extracted(body, "markdown", meta=meta)


# ---------------------------------------------------------------- HTML

# Never readable text: code, styling, navigation, forms, embedded media.
_DROP_TAGS = {
    "script", "style", "noscript", "template", "head", "nav", "svg", "math", "canvas",
    "iframe", "object", "embed", "form", "button", "select", "option", "input",
    "textarea", "label", "dialog", "menu",
}  # fmt: skip
_DROP_ROLES = {"navigation", "search", "menubar", "menu", "dialog", "alert", "banner", "contentinfo"}
# Elements that start and end a paragraph of their own.
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hgroup", "hr", "html", "li", "main", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
}  # fmt: skip
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def _hidden(tag) -> bool:
    attrs = tag.attrs or {}
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    if str(attrs.get("role", "")).lower() in _DROP_ROLES:
        return True
    return bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))


def _meta_content(soup, *names: str) -> str:
    """The first non-empty ``content`` of ``<meta property|name|itemprop=...>`` among ``names``."""
    for name in names:
        for attr in ("property", "name", "itemprop"):
            for tag in soup.find_all("meta", attrs={attr: re.compile(rf"^{re.escape(name)}$", re.I)}):
                content = " ".join(str(tag.get("content", "")).split())
                if content:
                    return content
    return ""


def _html_meta(soup) -> dict[str, str]:
    title = _meta_content(soup, "og:title", "twitter:title", "dc.title")
    if not title and soup.title and soup.title.string:
        title = soup.title.string
    url = ""
    for link in soup.find_all("link", href=True):
        rel = link.get("rel") or []
        rel = rel if isinstance(rel, list) else str(rel).split()
        if "canonical" in [r.lower() for r in rel]:
            url = str(link["href"]).strip()
            break
    return _clean_meta(
        {
            "title": title,
            "outlet": _meta_content(soup, "og:site_name", "application-name", "publisher"),
            "date": _meta_content(
                soup, "article:published_time", "og:published_time", "datePublished", "date",
                "pubdate", "publishdate", "dc.date.issued", "dc.date", "dcterms.created",
            ),  # fmt: skip
            "url": url or _meta_content(soup, "og:url"),
        }
    )


def _content_root(soup):
    """``<main>`` or the one ``<article>`` when the page marks its content, else ``<body>``.

    A marked element holding under a fifth of the page's text is a teaser, not the
    content: the whole body is used then."""
    body = soup.body or soup
    for name in ("main", "article"):
        found = [t for t in body.find_all(name) if not _hidden(t)]
        if len(found) == 1:
            if len(html_text(found[0])) >= 0.2 * len(html_text(body)):
                return found[0]
            break
    return body


def html_text(root) -> str:
    """Readable text under ``root``: one paragraph per block, blank lines between them.

    Walks the tree with an explicit stack (deeply nested pages cannot overflow
    Python's recursion limit)."""
    from bs4 import NavigableString, Tag
    from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

    skip_strings = (Comment, CData, Declaration, Doctype, ProcessingInstruction)
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        # Lines come only from <br>; two in a row (an empty line) end a paragraph.
        block: list[str] = []
        for line in "".join(current).split("\n") + [""]:
            line = " ".join(line.split())
            if line:
                block.append(line)
            elif block:
                paragraphs.append("\n".join(block))
                block = []
        current.clear()

    END = object()
    stack: list = [root]
    while stack:
        node = stack.pop()
        if node is END:
            flush()
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, skip_strings):
                current.append(str(node).replace("\n", " "))
            continue
        if not isinstance(node, Tag):
            continue
        name = (node.name or "").lower()
        if name in _DROP_TAGS or _hidden(node):
            continue
        if name == "br":
            current.append("\n")
            continue
        if name in _BLOCK_TAGS:
            flush()
            stack.append(END)
            if name in _HEADINGS:  # kept as a Markdown heading, so cleaning knows it for one
                current.append("#" * int(name[1]) + " ")
        elif name in ("td", "th"):
            current.append(" ")
        stack.extend(reversed(list(node.children)))
    flush()
    return "\n\n".join(paragraphs)


def extract_html(data: bytes) -> Extracted:
    from bs4 import BeautifulSoup

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns about markup that looks like a URL or a file name
        try:
            soup = BeautifulSoup(data, "lxml")
        except Exception as exc:  # lxml refuses a few malformed inputs outright
            raise ExtractError(f"not readable HTML ({type(exc).__name__})") from None
    meta = _html_meta(soup)
    text = html_text(_content_root(soup))
    return Extracted(_require_text(text, "no readable text in the page"), "html", meta=meta)


# ---------------------------------------------------------------- PDF


_ENDS_SENTENCE = re.compile(r"[.!?:;”\"’')\]]$")


def _page_text(raw: str) -> str:
    """A page's text with NULs dropped, blank edges trimmed and wrapped lines rejoined.

    A PDF breaks lines where the page is full, not where the writer did.  A line as long
    as the page's long lines (most of the widest) that does not end a sentence is
    wrapped: it is joined to the next with a space (or, after a hyphen before a
    lower-case letter, directly).  Short lines (headings, a paragraph's last line) and
    lines ending a sentence keep their break, so paragraphs and headings stay apart."""
    raw = raw.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    lines = [" ".join(line.split()) for line in raw.split("\n")]
    widest = max((len(line) for line in lines), default=0)
    out: list[str] = []
    for line, nxt in zip(lines, lines[1:] + [""]):
        out.append(line)
        wrapped = line and nxt and len(line) >= 0.75 * widest and not _ENDS_SENTENCE.search(line)
        if not wrapped:
            out.append("\n")
        elif line.endswith("-") and nxt[:1].islower():
            pass
        else:
            out.append(" ")
    text = "".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n ")


def _pdf_meta(reader) -> dict:
    """Title and creation date from the PDF's document information, where readable."""
    meta: dict = {}
    try:
        info = reader.metadata
        if info is not None:
            meta["title"] = info.title
            created = info.creation_date
            if created is not None:
                meta["date"] = created.date()
    except Exception:  # a damaged or malformed information dictionary is no reason to skip the text
        pass
    return meta


def extract_pdf(data: bytes) -> Extracted:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf logs every repair it makes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                try:
                    reader.decrypt("")
                except (DependencyError, FileNotDecryptedError, NotImplementedError):
                    raise ExtractError("an encrypted PDF") from None
            texts = [_page_text(page.extract_text() or "") for page in reader.pages]
        except ExtractError:
            raise
        except FileNotDecryptedError:
            raise ExtractError("an encrypted PDF") from None
        except Exception:  # pypdf raises many kinds on damaged files
            raise ExtractError("not a readable PDF") from None
        meta = _pdf_meta(reader)
    if not texts:
        raise ExtractError("a PDF without pages")
    if not any(t.strip() for t in texts):
        raise ExtractError("a PDF without a text layer (scanned?)")
    pages, parts, offset = [], [], 0
    for t in texts:
        pages.append(offset)
        parts.append(t)
        offset += len(t) + 2
    return Extracted("\n\n".join(parts), "pdf", pages=tuple(pages), meta=_clean_meta(meta))


# ---------------------------------------------------------------- dispatch

EXTRACTORS: dict[str, Callable[[bytes], Extracted]] = {
    ".txt": extract_text,
    ".md": extract_markdown,
    ".markdown": extract_markdown,
    ".html": extract_html,
    ".htm": extract_html,
    ".pdf": extract_pdf,
}
EXTENSIONS = tuple(EXTRACTORS)


def extract(path: Path | str, data: bytes) -> Extracted:
    """The stored text, page starts and metadata of a file with ``data`` as its bytes."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTRACTORS:
        raise ExtractError(f"unsupported file type {suffix or '(none)'}")
    return EXTRACTORS[suffix](data)


def versions() -> dict[str, str]:
    """The extraction libraries and their versions (recorded in the manifest)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("beautifulsoup4", "lxml", "pypdf", "PyYAML"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
