"""The chat page in a real browser (Debian's Chromium driven by Playwright).

Every test records every request the page makes and fails if one leaves loopback.
Screenshots go to test-artifacts/.  The hostile corpus (tests/hostile/) checks that
untrusted documents are shown as text: no script runs, nothing is fetched from their URLs.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

try:
    from tests.test_app import OUT_OF_SCOPE, ROOT, SEEDS, start_app
except ImportError:  # tests/ not a package: pytest puts tests/ itself on sys.path
    from test_app import OUT_OF_SCOPE, ROOT, SEEDS, start_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
HOSTILE = Path(__file__).resolve().parent / "hostile"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
BOT = '[data-testid="bot"]'
SEED_QUESTION = "Where did Bukele host Rubio for their talks?"
ANSWER_TIMEOUT = 30_000


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
        page.on("pageerror", lambda e: rec.errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#qa-question textarea", timeout=30_000)
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
    """Type ``question``, press Enter, wait for the new reply; returns the reply's locator."""
    bots = page.locator(BOT)
    n = bots.count() if n_before is None else n_before
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length > {n}", timeout=ANSWER_TIMEOUT)
    reply = bots.nth(n)
    reply.locator("strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    return reply


def set_quotes(page, k: int) -> None:
    page.locator("#qa-options").get_by_text("Options").first.click()
    number = page.locator("#qa-k input[type=number]")
    number.fill(str(k))
    number.press("Enter")
    number.blur()


def in_viewport(page, selector: str) -> bool:
    return page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
             return r.height > 0 && r.top < innerHeight && r.bottom > 0 && r.left < innerWidth && r.right > 0; }""",
        selector,
    )


def check_marks(page, folder: Path, turn: int = 1) -> int:
    """Every highlighted quote in the panel is exactly ``document[start:end]``."""
    marks = page.evaluate(
        """(turn) => [...document.querySelectorAll(`#qa-sources section[data-turn="${turn}"] article`)].map(a => {
             const m = a.querySelector('mark');
             return {doc: a.dataset.doc, start: +m.dataset.start, end: +m.dataset.end, text: m.textContent}; })""",
        turn,
    )
    assert marks
    for m in marks:
        assert m["text"] == document_text(folder, m["doc"])[m["start"] : m["end"]], m
    return len(marks)


# ---------------------------------------------------------------- the seed corpus


def test_seed_question_shows_quotes_sources_and_citation_click(seed_app, open_page):
    page = open_page(seed_app.url)
    reply = ask(page, SEED_QUESTION, 0)
    text = reply.inner_text()
    assert "From the articles" in text or "The articles don't say" in text
    assert "Lake Coatepeque" in text and "Sources" in text
    assert "paragraph" in text and "characters" in text
    n = check_marks(page, SEEDS)
    assert n == 5  # the default number of quotes
    assert page.locator("#qa-sources section[data-turn='1'] h3").inner_text().startswith(("Sources for", "Closest"))
    citations = page.locator("#qa-citations textarea").input_value()
    assert citations.startswith("[1] “") and "paragraph" in citations and "characters" in citations

    # Click the last quote's marker in the chat: its passage is scrolled into view and highlighted.
    page.screenshot(path=str(ARTIFACTS / "desktop-answer.png"), full_page=True)
    reply.locator(f'a[href="#qa-t1-s{n}"]').first.click()
    page.wait_for_selector(f"#qa-t1-s{n}.qa-active")
    assert page.locator("#qa-sources .qa-active").count() == 1
    assert in_viewport(page, f"#qa-t1-s{n} mark")
    assert page.evaluate("document.activeElement.id") == f"qa-t1-s{n}"
    assert page.url.rstrip("/") == seed_app.url.rstrip("/")  # no navigation, no new tab
    assert len(page.context.pages) == 1
    page.screenshot(path=str(ARTIFACTS / "desktop-citation-click.png"))

    # A second question: the panel keeps both, newest first, with distinct anchors.
    ask(page, "What grim title did El Salvador once carry because of its killings?")
    assert page.locator("#qa-sources section").first.get_attribute("data-turn") == "2"
    page.locator(BOT).nth(1).locator('a[href="#qa-t2-s1"]').first.click()
    page.wait_for_selector("#qa-t2-s1.qa-active")
    assert page.recorder.errors == []


def test_out_of_scope_question_says_so(seed_app, open_page):
    page = open_page(seed_app.url)
    reply = ask(page, OUT_OF_SCOPE, 0)
    text = reply.inner_text()
    assert text.startswith("The articles don't say.")
    assert "You may look at" in text
    assert page.locator("#qa-sources section h3").first.inner_text().startswith("Closest passages")
    check_marks(page, SEEDS)
    page.screenshot(path=str(ARTIFACTS / "out-of-scope.png"), full_page=True)


def test_empty_question_gets_a_message(seed_app, open_page):
    page = open_page(seed_app.url)
    reply = ask(page, "   ", 0)
    assert "empty question" in reply.inner_text()
    assert page.locator("#qa-sources article").count() == 0


def test_options_number_of_quotes_and_restrict_to_one_article(seed_app, open_page):
    page = open_page(seed_app.url)
    set_quotes(page, 2)
    page.locator("#qa-docs label").filter(has_text="Strengthening Ties").locator("input").check()
    ask(page, "Why has Bukele become so popular?", 0)
    docs = page.locator("#qa-sources section[data-turn='1'] article").evaluate_all("els => els.map(e => e.dataset.doc)")
    assert docs == ["004_6b5739bd79ea8551"] * 2
    check_marks(page, SEEDS)


def test_phone_width(seed_app, open_page):
    page = open_page(seed_app.url, width=390, height=844, is_mobile=True, has_touch=True, device_scale_factor=2)
    reply = ask(page, SEED_QUESTION, 0)
    assert "Sources" in reply.inner_text()
    # Nothing is wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    chat_box = page.locator("#qa-chat").bounding_box()
    panel_box = page.locator("#qa-sources").bounding_box()
    assert panel_box["y"] >= chat_box["y"] + chat_box["height"] - 1  # the panel stacks under the chat
    assert panel_box["width"] <= 390
    page.screenshot(path=str(ARTIFACTS / "phone-answer.png"), full_page=True)
    reply.locator('a[href="#qa-t1-s2"]').first.tap()
    page.wait_for_selector("#qa-t1-s2.qa-active")
    assert in_viewport(page, "#qa-t1-s2 mark")
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
    page.wait_for_selector(f"{BOT} strong", timeout=ANSWER_TIMEOUT)
    page.wait_for_selector("#qa-sources article")
    for _ in range(80):  # Tab on until a [n] marker of the reply has the focus
        page.keyboard.press("Tab")
        if page.evaluate("(document.activeElement.getAttribute('href') || '').startsWith('#qa-t1-s')"):
            break
    else:
        pytest.fail("Tab never reached a [n] marker")
    target = page.evaluate("document.activeElement.getAttribute('href').slice(1)")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#{target}.qa-active")
    assert page.evaluate("document.activeElement.id") == target
    assert in_viewport(page, f"#{target} mark")
    page.screenshot(path=str(ARTIFACTS / "keyboard.png"))


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


def test_hostile_documents_are_shown_as_text_and_run_nothing(hostile_app, open_page):
    page = open_page(hostile_app.url)
    set_quotes(page, 10)
    ask(page, "What did the lighthouse keeper write in the harbour logbook?", 0)
    ask(page, "What did the market sign in the old quarter read?")
    ask(page, "What did the radio operator spell out over the channel?")
    page.wait_for_timeout(500)  # let any would-be onerror or image load happen

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not any("evil.example" in u for u in page.recorder.urls)
    # No element came from the documents: no images, scripts, javascript: or outside links.
    for where in ("#qa-chat", "#qa-sources", "#qa-docs"):
        assert page.locator(f"{where} img, {where} script, {where} iframe").count() == 0, where
        hrefs = page.locator(f"{where} a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
        assert all(h.startswith("#qa-t") for h in hrefs), hrefs
    # The only formatting in the chat is the reply's own (lead line, "Sources", titles).
    assert page.locator("#qa-chat code, #qa-chat del, #qa-chat pre, #qa-chat h1, #qa-chat h2, #qa-chat table").count() == 0
    strong = page.locator("#qa-chat strong").evaluate_all("els => els.map(e => e.textContent)")
    assert set(strong) <= {"From the articles:", "The articles don't say.", "Sources"}, strong

    # Every quote reads in the chat exactly as in the document (line breaks shown as spaces),
    # and every hostile literal reads in the panel as typed.
    chat_text = page.locator("#qa-chat").evaluate("e => e.textContent")
    panel_text = page.locator("#qa-sources").evaluate("e => e.textContent")
    quotes = page.locator("#qa-sources mark").evaluate_all("els => els.map(m => m.textContent)")
    assert 10 <= len(quotes) <= 30  # three answers of at most 10 quotes
    for quote in quotes:
        assert f"“{' '.join(quote.splitlines())}”" in chat_text, quote[:200]
    for literal in LITERALS:
        assert literal in panel_text, literal
    for literal in LITERALS[:4]:  # the logbook question quotes these sentences (k=10 of 13)
        assert any(literal in q for q in quotes), literal
    # Invisible direction and zero-width characters are named beside their quote.
    warnings = page.locator("#qa-sources .qa-warn").all_inner_texts()
    assert any("U+202E RIGHT-TO-LEFT OVERRIDE" in w for w in warnings), warnings
    assert any("U+200B ZERO WIDTH SPACE" in w for w in warnings), warnings
    # The checkbox labels show the hostile title as text too.
    assert '<img src=x onerror="window.__pwned=1">' in page.locator("#qa-docs").inner_text()
    for turn in (1, 2, 3):
        check_marks(page, HOSTILE, turn)

    # The 20,000-character line wraps: no sideways scrolling of the page or the panel.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate(
        "[...document.querySelectorAll('#qa-sources .qa-para')].every(e => e.scrollWidth <= e.clientWidth + 1)"
    )
    assert page.evaluate(
        f"[...document.querySelectorAll('{BOT}')].every(e => e.scrollWidth <= e.clientWidth + 1)"
    )
    page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
    assert page.recorder.errors == []
