"""Stage 1, documents → text and passages: read a folder, clean it, cut it.

- :mod:`.corpus` — a folder of files → :class:`~qa.data.Document` s (ids, titles, outlets,
  dates, URLs, fingerprints); unreadable files are skipped with a reason.
- :mod:`.extract` — one file's bytes → the text quotes are cut from (``.txt``, ``.md``,
  ``.html``, ``.pdf``, ``.docx``) and its own metadata.
- :mod:`.cleaning` — rules for boilerplate that is never worth quoting.
- :mod:`.chunking` — a text → paragraphs, sentences and overlapping chunks (offsets only).

Nothing here knows about vectors or indexes; :mod:`qa.index` builds on it.
"""

from .. import stage_api

__all__, __getattr__ = stage_api(
    __name__,
    {
        "corpus": (
            "CorpusError",
            "Skipped",
            "catalog_bytes",
            "clean_label",
            "corpus_fingerprints",
            "printable",
            "read_corpus",
            "scan",
        ),
        "extract": ("EXTENSIONS", "ExtractError", "versions"),
        "cleaning": ("near_duplicate", "paragraph_skip_reason", "sentence_skip_reason"),
        "chunking": ("Layout", "layout", "split_sentences"),
    },
)
