"""QUAX spectra: DAQ files, message formats, analysis, accumulators; the kernel as an extra."""
