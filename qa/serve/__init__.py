"""Stage 4, the ways in: the command line, the web chat, and what they show.

- :mod:`.cli` — ``qa`` / ``python -m qa``: index, ask, eval, show, ls (:func:`.cli.main`).
- :mod:`.app` — ``qa-web`` / ``python app.py``: build the index if needed, serve the chat
  (:func:`.app.main`).
- :mod:`.web` — the Gradio chat page: layout, events, answers as Markdown.
- :mod:`.page` — the page's own CSS and JavaScript (answer card, reader view, accessibility).
- :mod:`.chat` — one chat turn: follow-ups resolved, answer cards, the stored conversation.
- :mod:`.present` — answers as HTML and text: cards, citations, the reader view, exports.

Entry points: nothing else in ``qa`` imports this package.  It exports nothing on purpose:
each entry point imports only its own module, so ``qa ask`` never loads the web page's code.
"""
