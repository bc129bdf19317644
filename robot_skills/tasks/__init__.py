"""Task files: LIBERO's BDDL dialect (reader/writer, task dataclasses) and suite resolution."""
