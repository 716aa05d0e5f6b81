"""The establishment model: what an inventory declares, checked, and every value derived from it."""
