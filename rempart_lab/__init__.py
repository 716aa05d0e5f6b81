"""The lab, not the product: the podman containers an inventory describes (``containers``) and the strict moto
stand-in of the offsite bucket (``offsite``), driven by ``rempart-lab``, and the generator of the records host's
FICTITIOUS patients (``dpi_fictif``, copied to that host by lab/fictitious-records.yml). Nothing of the ``rempart`` package
imports this one; ``make demo``, the molecule scenarios and the benchmarks do."""
