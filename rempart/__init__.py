"""Rempart: CaRE-compliant backup architecture for French hospitals, as code."""

__version__ = "0.1.0"
