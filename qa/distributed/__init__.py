"""Embedding a build's passages on a Ray cluster (``qa index --engine ray``).

(Split by job in a later commit; for now one module, :mod:`.ray_session`.)
"""

from .. import stage_api

__all__, __getattr__ = stage_api(
    __name__,
    {"ray_session": ("ENGINES", "RAY_HINT", "RayEmbedder", "RayEngineError", "ray_installed", "work_dir")},
)
