"""Tiny offline test pipelines of the backends that are one file (real diffusers classes, random weights)."""
