"""Stage 2, passages → a searchable index folder: embed, index, save, load.

(Split by job in the next commit; for now one module, :mod:`.store`.)
"""

from .. import stage_api

__all__, __getattr__ = stage_api(
    __name__,
    {
        "store": (
            "BUILD_STEPS",
            "FORMAT",
            "FORMAT_VERSION",
            "MANIFEST",
            "READABLE_VERSIONS",
            "Index",
            "IndexProblem",
            "IndexWriteError",
            "build",
            "build_and_save",
            "check",
            "encode_sorted",
            "load",
            "locate",
            "lock_path",
            "manifest_problem",
            "query_encoder_step",
            "read_manifest",
            "rebuild_hint",
            "reuse_problem",
            "save",
            "stale_reason",
            "tokenize",
            "update",
            "writer_lock",
        ),
    },
)
