"""Per-file and per-run spectrum aggregation (the Faust service is built on the shared library)."""
