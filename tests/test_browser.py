"""The chat page in a real browser (Debian's Chromium driven by Playwright).

Every test records every request the page makes and fails if one leaves loopback.
Screenshots go to test-artifacts/.  The hostile corpus (tests/hostile/) checks that
untrusted documents are shown as text: no script runs, nothing is fetched from their URLs.
"""

from __future__ import annotations

import csv
import json
import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

try:
    from tests.test_app import OUT_OF_SCOPE, ROOT, SEEDS, start_app
except ImportError:  # tests/ not a package: pytest puts tests/ itself on sys.path
    from test_app import OUT_OF_SCOPE, ROOT, SEEDS, start_app

from qa.serve.present import _LINE_BREAKS as LINE_BREAKS  # noqa: E402  (how the chat shows line breaks)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
HOSTILE = Path(__file__).resolve().parent / "hostile"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
BOT = '[data-testid="bot"]'
USER = '[data-testid="user"]'
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"  # axe-core 4.14.1 (MPL-2.0, header kept)
SEED_QUESTION = "How many people can CECOT hold?"
ANSWER_TIMEOUT = 60_000  # a bound on waiting for a state, generous for a busy 2-core machine


def document_text(folder: Path, doc_id: str) -> str:
    for ext in (".txt", ".md"):
        path = folder / f"{doc_id}{ext}"
        if path.exists():
            return path.read_bytes().decode("utf-8")
    raise FileNotFoundError(doc_id)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def seed_app(tmp_path_factory, seed_index):  # seed_index: conftest.py's real-model seed index
    server = start_app(tmp_path_factory, "browser-app", seed_index)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    index = tmp_path_factory.mktemp("hostile") / "index"  # app.py builds it on first start
    server = start_app(tmp_path_factory, "hostile-app", index, docs=HOSTILE, copy=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's Chromium is needed: apt-get install -y chromium (make dev)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Recorder:
    def __init__(self) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []

    def foreign(self) -> list[str]:
        out = []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            if parts.hostname not in LOCAL_HOSTS:
                out.append(url)
        return out


@pytest.fixture
def open_page(browser):
    """``open_page(url, width, height)`` → a fresh page; afterwards: no request left loopback."""
    contexts, recorders = [], []

    def opener(url: str, width: int = 1280, height: int = 900, **kw):
        ctx = browser.new_context(viewport={"width": width, "height": height}, **kw)
        rec = Recorder()
        ctx.on("request", lambda r: rec.urls.append(r.url))
        page = ctx.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT)
        page.on("pageerror", lambda e: rec.errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#qa-question textarea", timeout=30_000)
        # The page has restored what the browser kept (its load event set this): asking
        # before that could see the restored conversation replace the new answer.
        page.wait_for_function("document.body.dataset.qaReader !== undefined", timeout=30_000)
        contexts.append(ctx)
        recorders.append(rec)
        page.recorder = rec
        return page

    yield opener
    for ctx, rec in zip(contexts, recorders):
        ctx.close()
        assert rec.urls, "no request recorded"
        assert rec.foreign() == [], f"requests left the machine: {rec.foreign()}"


def ask(page, question: str, n_before: int | None = None):
    """Type ``question``, press Enter, wait until the new reply is shown (the page marks
    ``body[data-qa-shown]`` once it has brought it into view); returns the reply's locator."""
    bots = page.locator(BOT)
    n = bots.count() if n_before is None else n_before
    users = page.locator(USER).count()
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length > {n}", timeout=ANSWER_TIMEOUT)
    page.wait_for_function(f"document.body.dataset.qaShown === '{users + 1}'", timeout=ANSWER_TIMEOUT)
    return bots.nth(n)


def set_quotes(page, k: int) -> None:
    """Set the number of quotes and wait until the page holds the new value (the request
    carries what the slider holds: asking before it changed asked for the old number)."""
    toggle = page.locator("#qa-options button.label-wrap, #qa-options > button").first
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
        page.wait_for_selector("#qa-options button[aria-expanded='true']")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    number = page.locator("#qa-k input[type=number]")
    holds = f"document.querySelector('#qa-k input[type=range]').value === '{k}'"
    # Seen once in CI on a busy machine: the value typed was dropped (the slider kept 5), as if
    # the component re-rendered just after the typing.  Type it again until the slider holds it.
    for attempt in range(3):
        number.fill(str(k))
        number.press("Enter")
        number.blur()
        try:
            page.wait_for_function(holds, timeout=20_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def in_viewport(page, selector_or_locator) -> bool:
    loc = page.locator(selector_or_locator) if isinstance(selector_or_locator, str) else selector_or_locator
    return loc.first.evaluate(
        """(e) => { const r = e.getBoundingClientRect();
             return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.left < innerWidth && r.right > 0; }"""
    )


def fold(text: str) -> str:
    return LINE_BREAKS.sub(" ", text)


def chat_quotes(reply, folder: Path) -> list[dict]:
    """Each quote of a reply, checked: the text between its quote marks is exactly the
    document's characters its link names (line breaks shown as spaces)."""
    quotes = reply.locator(".qa-quote").evaluate_all(
        """els => els.map(e => { const p = e.querySelector('.qa-text').cloneNode(true);
             const a = p.querySelector('a.qa-n'); const href = a.getAttribute('href'); a.remove();
             return {href, text: p.textContent.trim()}; })"""
    )
    assert quotes
    for q in quotes:
        query = parse_qs(q["href"].lstrip("?"))
        doc, (start, end) = query["doc"][0], map(int, query["hl"][0].split("-"))
        q.update(doc=doc, start=start, end=end)
        assert q["text"] == f"“{fold(document_text(folder, doc)[start:end])}”", q
    return quotes


def check_marks(page, folder: Path) -> int:
    """Every highlighted passage in the reader view is exactly ``document[start:end]``."""
    marks = page.evaluate(
        """() => [...document.querySelectorAll('#qa-reader article mark')].map(m => ({
             doc: m.closest('article').dataset.doc, start: +m.dataset.start, end: +m.dataset.end, text: m.textContent}))"""
    )
    assert marks
    for m in marks:
        assert m["text"] == document_text(folder, m["doc"])[m["start"] : m["end"]], m
    return len(marks)


def wait_reader(page, doc: str, start: int | None = None) -> None:
    """Wait until the reader view shows ``doc`` with the passage at ``start`` active and
    brought into view (the page records ``body[data-qa-reader]`` once it has scrolled)."""
    where = f"#qa-reader article[data-doc='{doc}']"
    page.wait_for_selector(f"{where} mark.qa-active[data-start='{start}']" if start is not None else where)
    if start is not None:
        page.wait_for_function(f"document.body.dataset.qaReader === '{doc}:{start}'")


def follow(page, action, doc: str, start: int | None = None) -> None:
    """Do ``action`` (a click, a key press on a link) and wait until the reader view it
    opens has been shown (``body[data-qa-opened]`` counts the views the page has shown)."""
    before = page.evaluate("+(document.body.dataset.qaOpened || 0)")
    action()
    page.wait_for_function(f"+(document.body.dataset.qaOpened || 0) > {before}", timeout=ANSWER_TIMEOUT)
    wait_reader(page, doc, start)


def top_in_view(page, reply) -> None:
    """The reply's lead line and its first quote are in the viewport."""
    assert in_viewport(page, reply.locator(".qa-lead")), "the lead line is out of view"
    first = reply.locator(".qa-quote .qa-text").first
    if first.count() and first.is_visible():
        assert in_viewport(page, first), "the first quote is out of view"


def axe_findings(page) -> list[dict]:
    """axe-core's serious and critical WCAG 2.1 A/AA findings on the page once it has settled:
    no component still pending and no fade still running (seen in a clean-clone run: the
    export links measured at 66 % opacity, half way through Gradio's fade-in after an answer)."""
    page.wait_for_function(
        """() => !document.querySelector('.pending') && document.getAnimations().every(
               a => a.playState !== 'running' || !a.effect || a.effect.getComputedTiming().iterations === Infinity)""",
        timeout=ANSWER_TIMEOUT,
    )
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => { const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
             return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200))})); }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


# ---------------------------------------------------------------- the seed corpus


def test_answer_card_in_view_with_each_source_beside_its_quote(seed_app, open_page):
    page = open_page(seed_app.url, width=1366, height=900)
    reply = ask(page, SEED_QUESTION, 0)
    text = reply.inner_text()
    # Answered (plainly, or with the tentative tier's "Perhaps": that is the judge's call, not the card's).
    assert text.startswith(("From the articles", "Perhaps from the articles")) and "40,000" in text
    # The answer phrase inside the top quote is marked.
    assert "40,000" in reply.locator(".qa-top mark.qa-phrase").inner_text()
    top_in_view(page, reply)
    # One card: the best quote first with its source beside it; the others folded.
    assert reply.locator(".qa-quote.qa-top").count() == 1
    top_source = reply.locator(".qa-top .qa-src").inner_text()
    assert "Daily Kos, date unknown, paragraph " in top_source
    assert "characters" not in top_source  # in the tooltip, the reader view and --json
    assert reply.locator(".qa-top .qa-where").get_attribute("title").startswith("characters ")
    more = reply.locator("details.qa-more")
    assert more.count() == 1 and more.get_attribute("open") is None
    quotes = chat_quotes(reply, SEEDS)
    assert len(quotes) == 5  # the default number of quotes
    assert "Sources" not in text and page.locator("#qa-citations").count() == 0  # sources shown once
    # The answer's article is open beside it, the quote highlighted.
    wait_reader(page, quotes[0]["doc"], quotes[0]["start"])
    check_marks(page, SEEDS)
    page.screenshot(path=str(ARTIFACTS / "desktop-answer.png"))

    # A quote under "more evidence": its [n] opens the whole article at that passage.
    more.locator("summary").click()
    last = quotes[-1]
    follow(page, reply.locator(".qa-quote a.qa-n").nth(4).click, last["doc"], last["start"])
    assert in_viewport(page, "#qa-reader mark.qa-active")
    assert page.evaluate("document.activeElement.classList.contains('qa-article')")
    assert f"doc={last['doc']}" in page.url  # the address bar holds the stable link
    assert len(page.context.pages) == 1
    check_marks(page, SEEDS)
    page.screenshot(path=str(ARTIFACTS / "desktop-citation-click.png"))

    # A second question: its top is in view as well.
    second = ask(page, "What grim title did El Salvador once carry because of its killings?")
    top_in_view(page, second)
    assert second.locator(".qa-note").count() == 0  # a question that stands alone is asked as typed
    page.screenshot(path=str(ARTIFACTS / "desktop-second-answer.png"))
    assert page.recorder.errors == []


def test_out_of_scope_question_says_so_and_folds_the_closest_passages(seed_app, open_page):
    page = open_page(seed_app.url)
    reply = ask(page, OUT_OF_SCOPE, 0)
    text = reply.inner_text()
    assert text.startswith("The articles don't say.") and "You may look at" in text and "not an answer" in text
    assert "From the articles" not in text
    # The closest passages are folded and never shown as the answer.
    closest = reply.locator("details.qa-closest")
    assert closest.count() == 1 and closest.get_attribute("open") is None
    assert reply.locator(".qa-top, mark.qa-phrase").count() == 0
    top_in_view(page, reply)
    chat_quotes(reply, SEEDS)
    page.screenshot(path=str(ARTIFACTS / "out-of-scope.png"))
    # A name the articles never write is said, under the lead.
    named = ask(page, "Who painted the Mona Lisa?", 1).inner_text()
    assert named.startswith("The articles don't say.") and "The articles never mention “Mona Lisa”" in named


def test_empty_question_gets_a_message(seed_app, open_page):
    page = open_page(seed_app.url)
    reply = ask(page, "   ", 0)
    assert "empty question" in reply.inner_text()
    assert page.locator("#qa-reader article").count() == 0


def test_options_number_of_quotes_and_restrict_to_one_article(seed_app, open_page):
    page = open_page(seed_app.url)
    set_quotes(page, 2)
    page.locator("#qa-docs label").filter(has_text="Strengthening Ties").locator("input").check()
    page.wait_for_function("document.querySelector('#qa-docs input:checked') !== null")
    reply = ask(page, "Why has Bukele become so popular?", 0)
    quotes = chat_quotes(reply, SEEDS)
    assert [q["doc"] for q in quotes] == ["004_6b5739bd79ea8551"] * 2
    assert "Searched only: Strengthening Ties" in reply.inner_text()  # the reply says which
    # The controls explain themselves.
    assert "at most 10" in page.locator("#qa-k").inner_text()
    assert "only the default" in page.locator("#qa-mode").inner_text()


def test_phone_width(seed_app, open_page):
    page = open_page(seed_app.url, width=390, height=844, is_mobile=True, has_touch=True, device_scale_factor=2)
    reply = ask(page, SEED_QUESTION, 0)
    top_in_view(page, reply)
    # Nothing is wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    chat_box = page.locator("#qa-chat").bounding_box()
    reader_box = page.locator("#qa-reader").bounding_box()
    assert reader_box["y"] >= chat_box["y"] + chat_box["height"] - 1  # the reader stacks under the chat
    assert reader_box["width"] <= 390
    page.screenshot(path=str(ARTIFACTS / "phone-answer.png"))
    assert axe_findings(page) == []  # WCAG 2.1 AA at phone width too
    quotes = chat_quotes(reply, SEEDS)
    follow(page, reply.locator(".qa-top a.qa-n").tap, quotes[0]["doc"], quotes[0]["start"])
    assert in_viewport(page, "#qa-reader mark.qa-active")
    page.screenshot(path=str(ARTIFACTS / "phone-citation-tap.png"))


def test_keyboard_only(seed_app, open_page):
    page = open_page(seed_app.url)
    page.locator("body").click(position={"x": 5, "y": 5})  # nothing focused
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(40):  # Tab until the question box has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#qa-question') !== null"):
            break
    else:
        pytest.fail("Tab never reached the question box")
    page.keyboard.type(SEED_QUESTION)
    page.keyboard.press("Enter")
    page.wait_for_function("document.body.dataset.qaShown === '1'", timeout=ANSWER_TIMEOUT)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached = set()
    for _ in range(200):  # Tab through the whole page: every control is reached
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate(
                """() => { const e = document.activeElement; if (!e) return '';
                 for (const c of ['qa-n', 'qa-open', 'qa-copy', 'qa-dl', 'qa-plink']) if (e.classList.contains(c)) return c;
                 if (e.tagName === 'SUMMARY') return 'summary';
                 if (e.closest('#qa-options') && e.tagName === 'BUTTON') return 'options';
                 if (e.id === 'qa-clear') return 'clear';
                 return e.tagName.toLowerCase(); }"""
            )
        )
    assert {"qa-n", "qa-open", "qa-copy", "summary", "options", "qa-dl", "clear", "qa-plink"} <= reached, reached
    page.locator("body").click(position={"x": 5, "y": 5})
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(80):  # Tab on until a [n] marker of the reply has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('qa-n')"):
            break
    else:
        pytest.fail("Tab never reached a [n] marker")
    href = page.evaluate("document.activeElement.getAttribute('href')")
    query = parse_qs(href.lstrip("?"))
    follow(page, lambda: page.keyboard.press("Enter"), query["doc"][0], int(query["hl"][0].split("-")[0]))
    assert page.evaluate("document.activeElement.classList.contains('qa-article')")
    assert in_viewport(page, "#qa-reader mark.qa-active")
    page.screenshot(path=str(ARTIFACTS / "keyboard.png"))


def test_follow_up_is_read_in_context_and_the_conversation_survives_a_reload(seed_app, open_page):
    page = open_page(seed_app.url)
    ask(page, "Where did Bukele host Rubio for their talks?", 0)
    reply = ask(page, "On what date did they meet?", 1)
    note = reply.locator(".qa-note").first.inner_text()
    assert note.startswith("Read as a follow-up to “Where did Bukele host Rubio for their talks?”")
    assert "Feb. 3" in reply.locator(".qa-top").inner_text()
    before = page.locator(BOT).all_inner_texts()
    page.reload()
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length === 2", timeout=ANSWER_TIMEOUT)
    assert page.locator(BOT).all_inner_texts() == before
    assert page.locator(USER).all_inner_texts()[0] == "Where did Bukele host Rubio for their talks?"
    third = ask(page, "Who took the photo of them?", 2)  # the context came back too
    assert "Read as a follow-up" in third.locator(".qa-note").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "follow-up-after-reload.png"))
    page.locator("#qa-clear").click()
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length === 0")
    page.reload()
    page.wait_for_selector("#qa-question textarea")
    page.wait_for_function("document.querySelector('#qa-export').textContent.includes('Ask a question')")
    assert page.locator(BOT).count() == 0


def test_a_stable_link_opens_the_article_at_its_paragraph(seed_app, open_page):
    doc = "001_38b38ab778929121"
    page = open_page(seed_app.url + f"?doc={doc}&p=9")
    page.wait_for_selector(f"#qa-reader article[data-doc='{doc}'] li#qa-p9.qa-target")
    reader = page.locator("#qa-reader")
    assert reader.locator("h3").inner_text().startswith("Why is Trump trying to ship")
    meta = reader.locator(".qa-meta").first.inner_text()
    assert "Daily Kos" in meta and "date unknown" in meta
    assert "40,000" in reader.locator("li#qa-p9").inner_text()
    assert in_viewport(page, "#qa-reader li#qa-p9")
    # Every paragraph is numbered and has its own link.
    links = reader.locator("a.qa-plink").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert links[8] == f"?doc={doc}&p=9" and len(links) == reader.locator("li.qa-para").count()
    page.screenshot(path=str(ARTIFACTS / "reader-link.png"))


def test_articles_that_differ_are_flagged(seed_app, open_page):
    page = open_page(seed_app.url)
    reply = ask(page, "How many people has Bukele imprisoned?", 0)
    differ = reply.locator(".qa-differ").inner_text()
    assert differ.startswith("Articles differ:") and "75,000" in differ and "81,000" in differ
    page.screenshot(path=str(ARTIFACTS / "articles-differ.png"))


def test_copy_a_citation_and_export_the_conversation(seed_app, open_page):
    page = open_page(seed_app.url, permissions=["clipboard-read", "clipboard-write"])
    reply = ask(page, "How many people can CECOT hold?", 0)
    quotes = chat_quotes(reply, SEEDS)
    button = reply.locator(".qa-top button.qa-copy")
    button.click()
    page.wait_for_function("document.querySelector('.qa-top button.qa-copy').classList.contains('qa-copied')")
    copied = page.evaluate("navigator.clipboard.readText()")
    top = quotes[0]
    assert copied.startswith(f"“{' '.join(document_text(SEEDS, top['doc'])[top['start'] : top['end']].split())}” — ")
    assert "Daily Kos, date unknown, paragraph 9" in copied and f"characters {top['start']}–{top['end']}" in copied

    with page.expect_download() as info:
        page.locator("#qa-export a.qa-dl").filter(has_text="Markdown").click()
    markdown = Path(info.value.path()).read_text(encoding="utf-8")
    assert "## How many people can CECOT hold?" in markdown and "40,000" in markdown and "Daily Kos" in markdown
    with page.expect_download() as info:
        page.locator("#qa-export a.qa-dl").filter(has_text="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert len(rows) == len(quotes)
    assert list(rows[0])[:9] == [
        "question",
        "answered",
        "rank",
        "quote",
        "article",
        "outlet",
        "date",
        "paragraph",
        "characters",
    ]
    assert rows[0]["quote"] == document_text(SEEDS, top["doc"])[top["start"] : top["end"]]
    assert rows[0]["characters"] == f"{top['start']}–{top['end']}" and rows[0]["outlet"] == "Daily Kos"


def test_accessibility_axe_finds_nothing_serious(seed_app, open_page):
    page = open_page(seed_app.url, width=1366, height=900)
    assert axe_findings(page) == []  # the empty page
    reply = ask(page, "How many people has Bukele imprisoned?", 0)
    reply.locator("details.qa-more summary").click()
    set_quotes(page, 5)
    href = parse_qs(reply.locator(".qa-top a.qa-open").get_attribute("href").lstrip("?"))
    follow(page, reply.locator(".qa-top a.qa-open").click, href["doc"][0], int(href["hl"][0].split("-")[0]))
    ask(page, OUT_OF_SCOPE)
    findings = axe_findings(page)
    assert findings == [], json.dumps(findings, indent=1)
    # Toggles say whether they are open; every [n] has a name a screen reader can say.
    assert page.locator("#qa-options button[aria-expanded]").count() == 1
    name = page.evaluate("document.querySelector('.qa-top a.qa-n').textContent")
    assert name.startswith("[source 1: ")
    # No heading level is skipped.
    levels = page.evaluate(
        "[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].filter(h => h.offsetParent !== null).map(h => +h.tagName[1])"
    )
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels


# ---------------------------------------------------------------- the hostile corpus

LITERALS = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "[click](javascript:window.__pwned=1)",
    "![](https://evil.example/pixel.png)",
    "**four lamps**, `two ladders`, ~~one boat~~ and $$x^2$$ spare wicks &lt;script&gt;",
    "https://evil.example/bare and www.evil.example and keeper@evil.example",
    "مرحبا بكم في السوق",
    "שלום לכולם",
    "zero\u200bwidth\u200cjoined\u200dcrossing\ufeff",
    "\u202eexe.txt\u202c",
]


# Whole (~60 lines): one scenario, step by step.
def test_hostile_documents_are_shown_as_text_and_run_nothing(hostile_app, open_page):
    page = open_page(hostile_app.url)
    set_quotes(page, 10)
    replies = [
        ask(page, "What did the lighthouse keeper write in the harbour logbook?", 0),
        ask(page, "What did the market sign in the old quarter read?"),
        ask(page, "What did the radio operator spell out over the channel?"),
    ]
    for details in page.locator("#qa-chat details").all():  # unfold every quote, each checked
        if details.get_attribute("open") is None:
            details.locator("summary").click()
        page.wait_for_function("(d) => d.open", arg=details.element_handle())
    page.wait_for_function("[...document.querySelectorAll('#qa-chat details')].every(d => d.open)")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not any("evil.example" in u for u in page.recorder.urls)
    # No element came from the documents: no images, scripts, javascript: or outside links.
    for where in ("#qa-chat", "#qa-reader", "#qa-docs"):
        assert page.locator(f"{where} img, {where} script, {where} iframe").count() == 0, where
        hrefs = page.locator(f"{where} a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
        assert all(h.startswith("?doc=") for h in hrefs), hrefs  # links to this page's reader view only
    # The only formatting in the chat is the reply's own (lead line, answer phrase, "Articles differ").
    assert (
        page.locator("#qa-chat code, #qa-chat del, #qa-chat pre, #qa-chat h1, #qa-chat h2, #qa-chat table").count() == 0
    )
    strong = page.locator("#qa-chat strong").evaluate_all("els => els.map(e => e.textContent)")
    leads = {"From the articles", "Perhaps from the articles", "The articles don't say.", "Articles differ:"}
    assert set(strong) <= leads, strong

    # Every quote reads in the chat exactly as in the document (line breaks shown as spaces).
    quotes = [q for reply in replies for q in chat_quotes(reply, HOSTILE)]
    assert 10 <= len(quotes) <= 30  # three answers of at most 10 quotes
    texts = [document_text(HOSTILE, q["doc"])[q["start"] : q["end"]] for q in quotes]
    for literal in LITERALS[:4]:  # the logbook question quotes these sentences (k=10 of 13)
        assert any(literal in t for t in texts), literal
    # Invisible direction and zero-width characters are named beside their quote.
    warnings = page.locator("#qa-chat .qa-warn").all_inner_texts()
    assert any("U+202E RIGHT-TO-LEFT OVERRIDE" in w for w in warnings), warnings
    assert any("U+200B ZERO WIDTH SPACE" in w for w in warnings), warnings
    # The checkbox labels show the hostile title as text too.
    assert '<img src=x onerror="window.__pwned=1">' in page.locator("#qa-docs").inner_text()
    # Every article quoted opens in the reader view as text: every hostile literal reads as typed.
    reader_text = ""
    for doc in dict.fromkeys(q["doc"] for q in quotes):
        link = page.locator(f"#qa-chat a.qa-open[href^='?doc={doc}&']").first
        follow(page, link.click, doc)
        page.wait_for_selector(f"#qa-reader article[data-doc='{doc}'] mark.qa-active")
        check_marks(page, HOSTILE)
        assert page.locator("#qa-reader img, #qa-reader script, #qa-reader iframe").count() == 0
        reader_text += page.locator("#qa-reader").evaluate("e => e.textContent")
    for literal in LITERALS:
        assert literal in reader_text, literal
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # The 20,000-character line wraps: no sideways scrolling of the page or the reader.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate(
        "[...document.querySelectorAll('#qa-reader li.qa-para')].every(e => e.scrollWidth <= e.clientWidth + 1)"
    )
    assert page.evaluate(f"[...document.querySelectorAll('{BOT}')].every(e => e.scrollWidth <= e.clientWidth + 1)")
    page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
    assert page.recorder.errors == []
