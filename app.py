#!/usr/bin/env python3
"""Web chat over the articles:  python app.py [--host 127.0.0.1] [--port 7860] [--index index] [--docs seeds]

The same as the ``qa-web`` command (``qa/serve/app.py``): builds the index of --docs into
--index on first start (or when the documents changed), then serves the chat page.
Nothing is fetched from the network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # this checkout's qa, installed or not
os.environ.setdefault("GRADIO_TEMP_DIR", str(ROOT / ".gradio"))

from qa.serve.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
