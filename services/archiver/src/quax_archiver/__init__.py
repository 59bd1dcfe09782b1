"""Archiver: quax.spectra and quax.runs as Parquet (quaxspec.archive), nothing lost or doubled."""
