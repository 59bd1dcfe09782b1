"""Per-file and per-run spectrum aggregation."""
