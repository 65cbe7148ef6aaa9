"""The chat page's own CSS and script for the answer card, the reader view, copy buttons,
scrolling each new answer into view and the accessibility fixes Gradio's widgets need.

The script only reads the page and sets text: no network, no eval, no HTML from strings.
"""

CSS = """
.qa-sr { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
.qa-hidden, .qa-copytext { display: none !important; }
#qa-chat .qa-card p { margin: .25em 0; }
#qa-chat .qa-lead { font-size: 1rem; }
#qa-chat .qa-lead.qa-no strong { color: #7c2d12; }
#qa-chat .qa-lead.qa-maybe strong { color: #854d0e; }
#qa-chat .qa-note { font-size: .9rem; font-style: italic; color: #374151; }
#qa-chat .qa-quote { border-left: 3px solid #2563eb; padding: .1em 0 .1em .6em; margin: .45em 0; }
#qa-chat .qa-quote.qa-top { border-left-width: 5px; }
#qa-chat .qa-quote.qa-top .qa-text { font-size: 1.02rem; }
#qa-chat .qa-closest .qa-quote { border-left: 3px dashed #6b7280; }
#qa-chat mark.qa-phrase { background: #ffe58a; color: #111; padding: 0 2px; font-weight: 600; }
#qa-chat .qa-warn { font-size: .85rem; color: #92400e; }
#qa-chat [data-testid="user"], #qa-chat [data-testid="bot"] { scroll-margin-top: 2.6em; }
#qa-chat .qa-src { font-size: .85rem; color: #374151; }
#qa-chat .qa-unknown { font-style: italic; }
#qa-chat .qa-differ { background: #fef3c7; color: #78350f; border: 1px solid #f59e0b; border-radius: 6px; padding: .3em .5em; }
#qa-chat details > summary { cursor: pointer; font-weight: 600; color: #1e3a8a; margin: .4em 0; }
#qa-chat a.qa-n { text-decoration: none; font-weight: 600; color: #1d4ed8; }
#qa-chat a.qa-open { color: #1d4ed8; }
#qa-chat button.qa-copy { font-size: .8rem; padding: 0 .4em; border: 1px solid #6b7280; border-radius: 4px; background: #fff;
  color: #111827; cursor: pointer; }
#qa-chat button.qa-copy.qa-copied { border-color: #15803d; color: #14532d; }
#qa-reader .qa-article { max-height: 78vh; overflow-y: auto; padding-right: 6px; overflow-wrap: anywhere; }
#qa-reader .qa-article:focus-visible { outline: 3px solid #2563eb; outline-offset: 2px; }
#qa-reader h3 { font-size: 1.05rem; margin: 0; padding: .2em 0; position: sticky; top: 0; background: var(--block-background-fill, #fff); z-index: 1; }
#qa-reader .qa-meta { font-size: .85rem; color: #374151; margin: .1em 0; }
#qa-reader .qa-url { overflow-wrap: anywhere; }
#qa-reader ol.qa-paras { padding-left: 2.6em; }
#qa-reader li.qa-para { margin: .5em 0; white-space: pre-wrap; unicode-bidi: plaintext; scroll-margin: 2em; }
#qa-reader li.qa-target { background: rgba(37, 99, 235, .07); }
#qa-reader mark { color: #111; padding: 0 1px; }
#qa-reader mark.qa-quoted { background: #fff1a8; }
#qa-reader mark.qa-active { background: #ffd23f; outline: 2px solid #b45309; }
#qa-reader a.qa-plink { text-decoration: underline; color: #1d4ed8; }
#qa-chat .prose, #qa-chat .message-content { opacity: 1 !important; }  /* older answers stay readable (contrast) */
#qa-options .min_value, #qa-options .max_value, #qa-options .info-text, #qa-options [data-testid="block-info"] { color: #4b5563 !important; }
#qa-export .qa-export-links a { color: #1d4ed8; }
#qa-ask, #qa-ask:hover { background: #1d4ed8 !important; border-color: #1d4ed8 !important; color: #ffffff !important; }
footer a, footer button, footer span, footer div { color: #374151 !important; }
a:focus-visible, button:focus-visible, summary:focus-visible { outline: 3px solid #2563eb; outline-offset: 2px; }
@media (max-width: 640px) { #qa-reader .qa-article { max-height: none; } }
"""

# The element a new answer brings into view: the question just asked, with the lead line and
# the first quote under it.  The user scrolls down for more, never up.
SHOW_LATEST = """
() => {
  const go = () => {
    const users = document.querySelectorAll('#qa-chat [data-testid="user"]');
    const last = users[users.length - 1];
    if (!last) return;
    last.scrollIntoView({block: 'start', inline: 'nearest', behavior: 'instant'});
    // The reader beside it shows the quoted passage, scrolling only inside the article.
    const article = document.querySelector('#qa-reader .qa-article');
    const mark = article && article.querySelector('mark.qa-active');
    if (mark && article.scrollHeight > article.clientHeight) {
      const top = mark.getBoundingClientRect().top - article.getBoundingClientRect().top + article.scrollTop;
      article.scrollTop = Math.max(0, top - article.clientHeight / 3);
    }
    if (article) document.body.dataset.qaReader = article.dataset.doc + (mark ? ':' + mark.dataset.start : '');
    document.body.dataset.qaShown = String(users.length);
  };
  requestAnimationFrame(() => requestAnimationFrame(go));
}
"""

# After the reader view changed: the passage asked for in view; the keyboard focus on the
# article when a link was followed.
SHOW_READER = """
() => {
  const go = () => {
    const reader = document.querySelector('#qa-reader');
    if (!reader) return;
    const target = reader.querySelector('mark.qa-active') || reader.querySelector('li.qa-target');
    const article = reader.querySelector('.qa-article');
    if (target) target.scrollIntoView({block: 'center', inline: 'nearest', behavior: 'instant'});
    if (article && window.__qaFocusReader) { article.focus({preventScroll: true}); }
    window.__qaFocusReader = false;
    document.body.dataset.qaOpened = String((+document.body.dataset.qaOpened || 0) + 1);
    document.body.dataset.qaReader = article ? article.dataset.doc + (target && target.dataset ? ':' + (target.dataset.start || target.id) : '') : '';
  };
  requestAnimationFrame(() => requestAnimationFrame(go));
}
"""

JS = """
() => {
  if (window.__qaCardWired) return;
  window.__qaCardWired = true;
  const openRef = (ref) => {
    const box = document.querySelector('#qa-open-ref textarea, #qa-open-ref input');
    const button = document.querySelector('#qa-open-btn');
    if (!box || !button) return false;
    box.value = ref;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    button.click();
    return true;
  };
  const copyText = async (text) => {
    try { await navigator.clipboard.writeText(text); return true; } catch (e) {}
    const area = document.createElement('textarea');
    area.value = text; area.setAttribute('readonly', ''); area.style.position = 'fixed'; area.style.opacity = '0';
    document.body.appendChild(area); area.select();
    let ok = false; try { ok = document.execCommand('copy'); } catch (e) {}
    area.remove(); return ok;
  };
  document.addEventListener('click', (event) => {
    const t = event.target;
    if (!t || !t.closest) return;
    const copy = t.closest('button.qa-copy');
    if (copy) {
      event.preventDefault();
      const holder = copy.parentElement && copy.parentElement.querySelector('.qa-copytext');
      if (!holder) return;
      copyText(holder.textContent).then((ok) => {
        copy.classList.toggle('qa-copied', ok);
        copy.firstChild.textContent = ok ? 'Copied' : 'Copy failed';
        const status = document.getElementById('qa-status');
        if (status) status.textContent = ok ? 'Citation copied.' : 'The citation could not be copied.';
      });
      return;
    }
    const link = t.closest('a.qa-n, a.qa-open, a.qa-plink');
    if (!link) return;
    const href = link.getAttribute('href') || '';
    if (!/^[?]doc=/.test(href)) return;
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button === 1) return;  // a new tab: the stable link
    event.preventDefault();
    event.stopPropagation();
    window.__qaFocusReader = true;
    try { history.replaceState(null, '', href); } catch (e) {}
    openRef(href);
  }, true);
  const fix = () => {
    // The chat labels each message with its raw Markdown: let its text be its name.
    document.querySelectorAll('#qa-chat [aria-label]').forEach((e) => {
      const label = e.getAttribute('aria-label') || '';
      if (/^(bot|user)'s message/.test(label)) e.removeAttribute('aria-label');
    });
    const toggle = document.querySelector('#qa-options button.label-wrap, #qa-options > button');
    if (toggle) {
      const open = toggle.classList.contains('open') ? 'true' : 'false';
      if (toggle.getAttribute('aria-expanded') !== open) toggle.setAttribute('aria-expanded', open);
    }
  };
  new MutationObserver(fix).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['class', 'aria-label']});
  fix();
}
"""
