"""Stage 1: train and gate — datasets, training with tracking and lineage, the quality gate."""
