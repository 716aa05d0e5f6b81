"""The documents a hospital reads: the evidence, the report, the backup plan, from recorded results."""
