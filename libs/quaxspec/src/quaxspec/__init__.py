"""QUAX spectra: DAQ files, message formats, live analysis, accumulators; the kernel and the archive as extras."""
