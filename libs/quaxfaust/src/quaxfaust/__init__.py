"""The scaffolding the two Faust services share: app, worker start, guarded input, metrics."""
