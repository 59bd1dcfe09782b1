"""REST, WebSocket and dashboard service for QUAX spectra (the FastAPI service is built on the shared library)."""
