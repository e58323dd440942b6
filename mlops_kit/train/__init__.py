"""Stage 1: train and gate — data (``data``), training code (``entrypoint``, the built-in
estimators in ``builtin``), held-out metrics per task (``metrics``), training with tracking and
lineage (``training``), the quality gate (``gates``)."""
