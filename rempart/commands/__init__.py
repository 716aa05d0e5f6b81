"""The ``rempart`` commands integrators run by hand."""
