"""``python -m rempart.catalogue > docs/requirements.md``: the developer doc, rendered from the catalogue."""

import sys

from rempart.catalogue import catalogue, render_markdown

sys.stdout.write(render_markdown(catalogue()))
