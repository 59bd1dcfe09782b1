"""REST, WebSocket and dashboard service for QUAX spectra."""
