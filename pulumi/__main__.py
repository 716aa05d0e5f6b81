"""Pulumi entry point: one stack per establishment (`pulumi stack init <name>`, then
`pulumi config set rempart:establishmentFile ../inventories/<name>/group_vars/all/establishment.yml`)."""

from program import main

main()
