"""An establishment's secrets: the vault file, what it must hold, and how it is filled."""
