"""QUAX spectra: DAQ files, spectrum kernel, accumulators, live analysis and message formats."""
