"""`qa index` over generated folders: random names, encodings, sizes, symlinks in and out.

Whatever the folder holds, indexing ends with exit 0 and a loadable index whose every
passage is an exact slice of its document, or with one "error:" line and a non-zero
status — never a traceback, never a half-written index.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.serve import cli
from qa.index import load

NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
names = st.text(NAME_CHARS, min_size=1, max_size=24).filter(
    lambda n: n not in (".", "..") and len(n.encode("utf-8", "surrogatepass")) < 200
)
prose = st.text(st.characters(blacklist_categories=("Cs",)), max_size=600)
encodings = st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252", "raw"])
extensions = st.sampled_from([".txt", ".md", ".html", ".pdf", ".TXT", "", ".bin"])


@st.composite
def folders(draw):
    files = draw(
        st.lists(st.tuples(names, extensions, prose, encodings, st.binary(max_size=200)), min_size=0, max_size=6)
    )
    links = draw(
        st.lists(
            st.tuples(names, st.sampled_from(["outside-file", "outside-dir", "inside", "dangling", "loop"])), max_size=3
        )
    )
    nested = draw(st.booleans())
    return files, links, nested


def _write(root: Path, outside: Path, spec) -> None:
    files, links, nested = spec
    written = []
    for i, (name, ext, text, encoding, raw) in enumerate(files):
        folder = root / "sub" if nested and i % 2 else root
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}{ext}"
        try:
            data = raw if encoding == "raw" else text.encode(encoding, "replace")
            path.write_bytes(data)
            written.append(path)
        except OSError:  # a name the file system refuses is not the product's concern
            continue
    for name, kind in links:
        target = {
            "outside-file": outside / "secret.txt",
            "outside-dir": outside,
            "inside": written[0] if written else root / "missing.txt",
            "dangling": root / "nowhere" / "x.txt",
            "loop": root / f"{name}.lnk",
        }[kind]
        try:
            os.symlink(target, root / f"{name}.lnk.txt" if kind != "loop" else root / f"{name}.lnk")
        except OSError:
            continue


@pytest.mark.slow
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(spec=folders())
def test_index_of_any_folder_is_loadable_or_one_line(spec, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root, outside, index = base / "docs", base / "outside", base / "index"
        root.mkdir()
        outside.mkdir()
        (outside / "secret.txt").write_text("The secret password is swordfish. Never quote it.\n", encoding="utf-8")
        _write(root, outside, spec)
        capsys.readouterr()
        code = cli.main(["index", "--docs", str(root), "--index", str(index), "--model", "hash-64", "--quiet"])
        out = capsys.readouterr()
        assert "Traceback" not in out.err and "Traceback" not in out.out
        if code != 0:
            lines = [x for x in out.err.strip().splitlines() if x.startswith("error:")]
            assert len(lines) == 1, out.err
            assert not index.exists() or load(index)  # a failed first build leaves no broken folder
            return
        idx = load(index)
        for d in idx.documents:
            assert "swordfish" not in d.text, "a link led out of the documents folder"
        for table in (idx.sentences, idx.chunks, idx.paragraphs):
            for row in table:
                doc, start, end = (int(x) for x in row[:3])
                assert 0 <= start < end <= len(idx.documents[doc].text)
        shutil.rmtree(index, ignore_errors=True)
