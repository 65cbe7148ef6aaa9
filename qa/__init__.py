"""Cited, extractive question answering over a folder of documents.

Pipeline: corpus → chunking → embedding → index → retrieval → answer → evaluation.
Every answer is a set of verbatim quotes (``text == document.text[start:end]``).
"""

__version__ = "0.1.0"
