"""Stage 1 as a pipeline: named, cached, retried steps, and snapshots tied to versions.

:mod:`~mlops_kit.pipeline.engine` runs steps; :mod:`~mlops_kit.pipeline.store` keeps their
outputs by content; :mod:`~mlops_kit.pipeline.steps` are the built-in steps (ingest → validate →
preprocess → train → evaluate → register); :mod:`~mlops_kit.pipeline.snapshots` ties each
registered version to the data and outputs that made it (docs/pipeline.md).
"""
