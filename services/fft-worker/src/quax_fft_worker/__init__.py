"""FFT worker for QUAX raw chunks."""
