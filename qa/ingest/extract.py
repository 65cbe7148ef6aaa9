"""A file's bytes → the text the index stores, its page starts and its own metadata.

One function per format, each built on a well-kept library:

* ``.txt``: the file decoded as UTF-8, exactly (so offsets are those of the file, as
  eval/FORMAT.md counts them).
* ``.md`` / ``.markdown``: the text it shows (:func:`markdown_text`: no emphasis,
  code or link syntax; headings keep their ``#``), after its YAML front matter (PyYAML
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
* ``.docx``: the body's paragraphs and tables in reading order (python-docx), one
  paragraph per Word paragraph or table row (cells joined by " | "), separated by blank
  lines; headings marked as in Markdown; hidden text (Word's "hidden" font) left out;
  headers, footers and comments are not content.  Title and creation date from the
  document's properties.

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

from ..errors import DocumentError


class ExtractError(DocumentError):
    """A file whose text cannot be extracted; the message is the reason, without the name."""


@dataclass(frozen=True)
class Extracted:
    """What one file holds: its text, the start of each page, and metadata it declares."""

    text: str
    format: str  # "text", "markdown", "html", "pdf" or "docx"
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


# Inline Markdown, replaced by the text it shows (issue 11: quotes read as text, never
# "**bold**").  Headings keep their "# " (the stored-text convention the HTML reader follows
# and the cleaning rules read); lines, blank lines and everything else stay as written.
_MD_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_MD_INLINE = (
    (re.compile(r"!\[([^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"\n]*\")?\)"), ""),  # image: not text (as in HTML)
    (re.compile(r"\[([^\]\n]+)\]\([^)\s]*(?:\s+\"[^\"\n]*\")?\)"), r"\1"),  # link: its text
    (re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]"), r"\1"),  # reference link
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolink
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*\\])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*\\])\*(?![\w*])"), r"\1"),  # emphasis
    (re.compile(r"(?<![\w\\])_(?=[^\s_])([^_\n]+?)(?<=[^\s_\\])_(?!\w)"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strike-through
    (re.compile(r"(`+)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # code span
)
_MD_REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s+\S+.*$")
# A line that is nothing but a link or an image: navigation or media, not content (the
# cleaning rules call such lines "link only"); it is stored as an empty line.
_MD_LINK_LINE = re.compile(r"^\s*(?:[-*+]\s+)?!?\[[^\]\n]*\]\([^)\n]*\)\s*$")
_MD_QUOTE = re.compile(r"^(\s{0,3}>\s?)+")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~|])")


def markdown_text(body: str) -> str:
    """Markdown as the text it shows: emphasis, code spans, links (their text), images (left
    out, as the HTML reader leaves out ``<img>``), block-quote markers, reference definitions,
    lines that are only a link and backslash escapes removed; fenced code kept as written.
    Line structure is kept, so paragraphs stay paragraphs."""
    out, fence = [], None
    for line in body.splitlines(keepends=True):
        opening = _MD_FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence:
                fence = None
            out.append(line)
            continue
        if opening:
            fence = opening.group(1)[0]
            out.append(line)
            continue
        end = len(line) - len(line.rstrip("\r\n"))
        text, newline = line[: len(line) - end], line[len(line) - end :]
        if _MD_REFERENCE.match(text) or _MD_LINK_LINE.match(text):
            out.append(newline)
            continue
        text = _MD_QUOTE.sub("", text)
        for pattern, repl in _MD_INLINE:
            text = pattern.sub(repl, text)
        out.append(_MD_ESCAPE.sub(r"\1", text) + newline)
    return "".join(out)


def extract_markdown(data: bytes) -> Extracted:
    text = _decode_utf8(data)
    meta, body_start = split_front_matter(text)
    body = text[body_start:]
    if body_start:  # blank lines between the front matter and the first line are not content either
        body = body[len(body) - len(body.lstrip("\r\n")) :]
    body = _require_text(markdown_text(body), "no text after the front matter" if meta else "empty file")
    return Extracted(body, "markdown", meta=meta)


# ---------------------------------------------------------------- HTML

# Never readable text: code, styling, navigation, forms, embedded media.
_DROP_TAGS = {
    "script", "style", "noscript", "template", "head", "nav", "svg", "math", "canvas",
    "iframe", "object", "form", "button", "select", "option",
    "textarea", "label", "dialog", "menu",
}  # fmt: skip
# Void elements hold no text of their own, but lxml does not know all of them as void:
# ``<embed src=x>`` swallows everything after it as its children.  They are skipped, and
# whatever lxml put inside them is read as the page's text it is.
_VOID_TAGS = {
    "embed",
    "input",
    "param",
    "source",
    "track",
    "keygen",
    "wbr",
    "img",
    "area",
    "col",
    "base",
    "link",
    "meta",
}
_DROP_ROLES = {"navigation", "search", "menubar", "menu", "dialog", "alert", "banner", "contentinfo"}
# Elements that start and end a paragraph of their own.
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hgroup", "hr", "html", "li", "main", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
}  # fmt: skip
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Declarations that make text invisible: not displayed, transparent, zero-sized, or moved off
# the page.  (White on white is checked from the colours, see :func:`_invisible_colours`.)
_HIDDEN_STYLE = re.compile(
    r"""display\s*:\s*none | visibility\s*:\s*(?:hidden|collapse) | opacity\s*:\s*0*(?:\.0*)?\s*(?:;|$|!)
      | font-size\s*:\s*0+(?:\.0*)?\s*(?:px|pt|em|rem|%|vw|vh)?\s*(?:;|$|!)
      | (?:^|;)\s*(?:max-)?(?:height|width)\s*:\s*0+(?:px)?\s*(?:;|$|!)[^"]*overflow\s*:\s*hidden
      | (?:left|top|text-indent)\s*:\s*-\d{4,}
      | clip\s*:\s*rect\(\s*0 | clip-path\s*:\s*inset\(\s*(?:50|100)%
      | color\s*:\s*transparent""",
    re.I | re.X,
)
_COLOUR = re.compile(r"(?:^|;)\s*(color|background(?:-color)?)\s*:\s*([^;!]+)", re.I)
_WHITE = {"white", "#fff", "#ffffff", "#ffff", "#ffffffff", "rgb(255,255,255)", "rgba(255,255,255,1)", "hsl(0,0%,100%)"}


def _invisible_colours(style: str) -> bool:
    """Text the colour of its background (white on the page's default white included)."""
    found = {k.lower().split("-")[0]: " ".join(v.lower().split()).replace(" ", "") for k, v in _COLOUR.findall(style)}
    colour, background = found.get("color"), found.get("background")
    if colour is None:
        return False
    if background is None:
        return colour in _WHITE
    return colour == background or (colour in _WHITE and background in _WHITE)


def _hidden(tag, hidden_names: tuple[set, set] = (set(), set())) -> bool:
    attrs = tag.attrs or {}
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    if str(attrs.get("role", "")).lower() in _DROP_ROLES:
        return True
    classes, ids = hidden_names
    if classes or ids:
        own = attrs.get("class") or []
        own = own if isinstance(own, list) else str(own).split()
        if classes.intersection(own) or str(attrs.get("id", "")) in ids:
            return True
    style = str(attrs.get("style", ""))
    return bool(_HIDDEN_STYLE.search(style)) or _invisible_colours(style)


_CSS_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_SIMPLE_SELECTOR = re.compile(r"^[a-z0-9]*([.#])([\w-]+)$", re.I)


def _hidden_by_stylesheet(soup) -> tuple[set, set]:
    """Classes and ids that the page's own ``<style>`` rules hide (simple selectors only:
    ``.name``, ``#name``, ``tag.name``)."""
    classes, ids = set(), set()
    for style in soup.find_all("style"):
        css = re.sub(r"/\*.*?\*/", "", style.get_text(), flags=re.S)
        css = re.sub(r"@media[^{]*\{", "", css)  # rules inside media queries count too
        for selectors, body in _CSS_RULE.findall(css):
            if not (_HIDDEN_STYLE.search(body) or _invisible_colours(body)):
                continue
            for selector in selectors.split(","):
                m = _SIMPLE_SELECTOR.match(selector.strip())
                if m:
                    (classes if m.group(1) == "." else ids).add(m.group(2))
    return classes, ids


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
                soup,
                "article:published_time",
                "og:published_time",
                "datePublished",
                "date",
                "pubdate",
                "publishdate",
                "dc.date.issued",
                "dc.date",
                "dcterms.created",
            ),  # fmt: skip
            "url": url or _meta_content(soup, "og:url"),
        }
    )


def _content_root(soup, hidden_names: tuple[set, set] = (set(), set())):
    """``<main>`` or the one ``<article>`` when the page marks its content, else ``<body>``.

    A marked element holding under a fifth of the page's text is a teaser, not the
    content: the whole body is used then."""
    body = soup.body or soup
    for name in ("main", "article"):
        found = [t for t in body.find_all(name) if not _hidden(t, hidden_names)]
        if len(found) == 1:
            if len(html_text(found[0], hidden_names)) >= 0.2 * len(html_text(body, hidden_names)):
                return found[0]
            break
    return body


def _looks_binary(data: bytes) -> bool:
    """Bytes that are no text document at all (random or binary data saved as .html):
    NUL bytes, or many control characters once decoded."""
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    # Control bytes (not tab, line breaks, form feed) are ~11% of random data and ~0 of any
    # text encoding's pages (bytes >= 0x80 are not counted: legacy encodings use them).
    bad = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return bad > 0.02 * max(len(sample), 1)


def html_text(root, hidden_names: tuple[set, set] = (set(), set())) -> str:
    """Readable text under ``root``: one paragraph per block, blank lines between them.
    ``hidden_names``: classes and ids the page's stylesheet hides (:func:`_hidden_by_stylesheet`).

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
        if name in _DROP_TAGS or _hidden(node, hidden_names):
            continue
        if name in _VOID_TAGS:  # no text of its own; what lxml nested in it is the page's
            stack.extend(reversed(list(node.children)))
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

    if _looks_binary(data):
        raise ExtractError("not an HTML page (binary data)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns about markup that looks like a URL or a file name
        try:
            soup = BeautifulSoup(data, "lxml")
        except Exception as exc:  # lxml refuses a few malformed inputs outright
            raise ExtractError(f"not readable HTML ({type(exc).__name__})") from None
    meta = _html_meta(soup)
    hidden_names = _hidden_by_stylesheet(soup)
    text = html_text(_content_root(soup, hidden_names), hidden_names)
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


# PDF "titles" that name no document: a browser's blank page or an address, a file name,
# an editor's placeholder.  The title then comes from the text's first heading line or,
# failing that, the file name (qa/ingest/corpus.py ``guess_title``).
_JUNK_TITLE = re.compile(
    r"""^(?:about:\S*|[a-z][a-z0-9+.-]*://\S*|file:\S*|www\.\S*
        |untitled(?:[\s_-]*\d*)?|document\s*\d*|title|no\s+title|none|null|unknown|print|slide\s*\d*
        |microsoft\s+(?:word|powerpoint|excel)\s*-.*
        |.*\.(?:pdf|docx?|odt|rtf|pptx?|xlsx?|txt|html?|indd|qxd|tmp|tex|dvi|ps|eps|png|jpe?g))$""",
    re.I | re.X,
)


def junk_title(value) -> bool:
    """Whether a PDF's metadata title is no title (see :data:`_JUNK_TITLE`), or has no letter."""
    text = " ".join(str(value or "").split())
    return not text or not any(c.isalpha() for c in text) or bool(_JUNK_TITLE.match(text))


def _pdf_meta(reader) -> dict:
    """Title and creation date from the PDF's document information, where readable (a junk
    title such as "about:blank" or "Microsoft Word - draft.docx" is left out)."""
    meta: dict = {}
    try:
        info = reader.metadata
        if info is not None:
            if not junk_title(info.title):
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


# ---------------------------------------------------------------- Word (.docx)

# A .docx is a zip: refuse one that would unpack to more than this (a zip bomb) unread.
DOCX_MAX_UNPACKED = 256 * 2**20
_HEADING_STYLE = re.compile(r"^(?:heading\s*(\d)|title)$", re.I)


def _docx_paragraph(paragraph) -> str:
    """A Word paragraph's visible text: its runs and links, without hidden runs."""
    from docx.text.hyperlink import Hyperlink

    parts = []
    for item in paragraph.iter_inner_content():
        runs = item.runs if isinstance(item, Hyperlink) else [item]
        parts.extend(r.text for r in runs if not r.font.hidden)
    text = " ".join("".join(parts).split())
    style = paragraph.style.name if paragraph.style is not None else ""
    heading = _HEADING_STYLE.match(style or "")
    if text and heading:
        text = "#" * int(heading.group(1) or 1) + " " + text
    return text


def _docx_row(row) -> str:
    cells, seen = [], set()
    for cell in row.cells:
        if id(cell._tc) in seen:  # a merged cell appears once per column it spans
            continue
        seen.add(id(cell._tc))
        text = " ".join(t for t in (_docx_paragraph(p) for p in cell.paragraphs) if t)
        if text:
            cells.append(text)
    return " | ".join(cells)


def extract_docx(data: bytes) -> Extracted:
    import zipfile

    import docx
    from docx.table import Table

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > DOCX_MAX_UNPACKED:
                raise ExtractError(f"a Word document that unpacks to over {DOCX_MAX_UNPACKED // 2**20} MB")
        document = docx.Document(io.BytesIO(data))
        blocks = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                blocks.extend(_docx_row(row) for row in item.rows)
            else:
                blocks.append(_docx_paragraph(item))
        props = document.core_properties
        meta = {"title": props.title, "date": props.created}
    except ExtractError:
        raise
    except Exception:  # python-docx and zipfile raise many kinds on damaged or foreign files
        raise ExtractError("not a readable Word document (.docx)") from None
    text = "\n\n".join(b for b in blocks if b)
    return Extracted(_require_text(text), "docx", meta=_clean_meta(meta))


# ---------------------------------------------------------------- dispatch

EXTRACTORS: dict[str, Callable[[bytes], Extracted]] = {
    ".txt": extract_text,
    ".md": extract_markdown,
    ".markdown": extract_markdown,
    ".html": extract_html,
    ".htm": extract_html,
    ".pdf": extract_pdf,
    ".docx": extract_docx,
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
    for name in ("beautifulsoup4", "lxml", "pypdf", "python-docx", "PyYAML"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
