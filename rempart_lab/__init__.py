"""The lab, not the product: the podman containers an inventory describes (``containers``) and the strict moto
stand-in of the offsite bucket (``offsite``), driven by ``rempart-lab``. Nothing of the ``rempart`` package
imports this one; ``make demo``, the molecule scenarios and the benchmarks do."""
