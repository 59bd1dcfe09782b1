"""Producer of QUAX raw chunks."""
