# Rempart — the two commands of the README, and the steps they are made of.
#   make demo   the main job on the lab: build the lab, converge site.yml, print where the results are
#   make test   the whole suite: lint, unit/integration tests, molecule scenarios on the lab
# Both install what they need (root, Debian 12) and are idempotent.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(CURDIR)/$(VENV)/bin
LAB_DIR     := $(CURDIR)/.lab
INVENTORY   ?= inventories/lab
export PATH := $(BIN):$(PATH)
export ANSIBLE_VAULT_PASSWORD_FILE ?= $(LAB_DIR)/vault-password
export ANSIBLE_FORCE_COLOR ?= 0
# Scenarios `make test` runs (every one: CI runs them all), two at a time, longest first so that the lanes end
# together: `offline` (a software-emulated QEMU VM with hot-plugged media) holds one lane for most of the run while
# the other takes the container scenarios. Durations in a fresh-clone run on 2 cores (2026-12-01): offline 1,254 s,
# hardening 584, proof 488, ght 495, hardening-vm 366, backup 354, degraded 259, offsite 214, lab 49. Three lanes
# gained nothing (2,563 s against 2,527 s: every scenario took 1.6-1.9x as long; the CPU is what they share).
# `make molecule MOLECULE_SCENARIOS=proof` runs one.
MOLECULE_SCENARIOS ?= offline backup lab hardening proof ght hardening-vm degraded offsite
MOLECULE_JOBS ?= 2

.PHONY: help setup lock collection host lab-image vm-disk lab-up lab-down lab-vault demo lint unit molecule test test-quick bench-hardening bench-backup bench-converge clean

help:
	@echo "make demo   - build the lab and converge the lab establishment (results under reports/)"
	@echo "make test   - lint, unit and integration tests, molecule scenarios"
	@echo "make lab-down - remove the lab containers;  make test-quick - lint + unit only"

host:  ## host packages, podman preparation (every boot)
	@lab/host-setup.sh
	@if [ -s .ci/apt-packages.txt ]; then \
	  missing=$$(grep -vE '^\s*(#|$$)' .ci/apt-packages.txt | while read -r p; do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	  if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $$missing; fi; fi

# Exactly the locked versions, every file checked against its hash (requirements/dev.txt: runtime + test + offsite).
# pip refuses --require-hashes beside an editable install, so the lock goes first (--no-deps: nothing resolved
# here), then rempart itself, built with the locked setuptools (no build isolation: nothing fetched unpinned).
$(VENV)/.installed: pyproject.toml requirements/dev.txt requirements.yml
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-build-isolation --no-deps -e .
	$(BIN)/python -m pip check
	$(BIN)/ansible-galaxy collection install -r requirements.yml --offline >/dev/null
	@touch $@

# Refresh the locks after a change of pyproject.toml's ranges (pins that still fit are kept); UPGRADE=1 takes the
# newest release every range allows. Then run make test before committing the new locks.
LOCK_FLAGS := -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
              $(if $(UPGRADE),--upgrade)
lock:  ## needs only pip-compile (the locked one), not an install that matches pyproject.toml's new ranges
	@test -x $(BIN)/pip-compile || { test -x $(BIN)/python || python3 -m venv $(VENV); \
	  $(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements/dev.txt; }
	$(BIN)/pip-compile $(LOCK_FLAGS) -o requirements/runtime.txt pyproject.toml requirements/build.in
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra offsite --extra test -o requirements/dev.txt \
	  pyproject.toml requirements/build.in

setup: host $(VENV)/.installed

collection: $(VENV)/.installed  ## dist/rempart-rempart-<version>.tar.gz: the collection rempart.rempart (execution-environment.yml)
	$(BIN)/ansible-galaxy collection build --force --output-path dist

lab-image: setup
	@lab/build-image.sh

lab-vault: $(VENV)/.installed
	@$(BIN)/rempart init-vault $(INVENTORY) --vault-password-file $(ANSIBLE_VAULT_PASSWORD_FILE)

lab-up: lab-image lab-vault
	@$(BIN)/rempart-lab up --inventory $(INVENTORY)
	@$(BIN)/rempart-lab offsite up --inventory $(INVENTORY) --vault-password-file $(ANSIBLE_VAULT_PASSWORD_FILE)
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/lab-bootstrap.yml

lab-down:
	@$(BIN)/rempart-lab offsite down --inventory $(INVENTORY)
	@$(BIN)/rempart-lab down --inventory $(INVENTORY)

demo: lab-up
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/site.yml
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/drill-ransomware.yml
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/drill.yml
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/red-button.yml -e red_button_state=isolate -e red_button_reason=demo
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/red-button.yml -e red_button_state=release
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/evidence.yml -e rempart_hardening_scan=true \
	  -e rempart_hardening_scanner_dir=$(LAB_DIR)/oscap-trixie
	@echo
	@echo "Lab running (make lab-down removes it). Results:"
	@find reports -type f | sort | sed 's/^/  /'
	@echo "Rapport CaRE : reports/*/rapport-care.html (.pdf)   Plan : reports/*/plan-sauvegarde.html (.pdf)"
	@cat $(LAB_DIR)/repo/drift.txt

lint: setup lab-vault  ## ansible-lint syntax-checks playbooks with the lab inventory, whose vault it must open
	$(BIN)/yamllint -s .
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint

unit: setup
	$(BIN)/python -m pytest -q

molecule: lab-image  ## scenarios run $(MOLECULE_JOBS) at a time, logs under .lab/molecule/
	tests/molecule-lanes.sh $(MOLECULE_JOBS) $(MOLECULE_SCENARIOS)

test-quick: lint unit

# The lab image and VM disk builds (downloads, debootstrap, disk image: mostly waiting) start first, beside lint and
# unit (CPU); then the molecule scenarios. Each step's output is printed in one piece when it ends.
test: setup
	@$(MAKE) --no-print-directory -j3 --output-sync=target vm-disk lint unit
	@$(MAKE) --no-print-directory molecule
	@echo "make test: all passed"

vm-disk: lab-image  ## the QEMU VM disk molecule/offline and hardening-vm boot (rebuilt when its recipe or the lab changed)
	@lab/vm/build-vm-disk.sh

bench-hardening: lab-image  ## OpenSCAP ANSSI-BP-028 scores (about 70 min)
	tests/benchmarks/hardening.sh

bench-backup: lab-image  ## backup and restore through the deployed path vs restic alone and cp -a (about 8 min)
	tests/benchmarks/backup.sh

bench-converge: lab-image  ## site.yml (base + backup) on 1, 4, 8 clients, fresh and second run (about 15 min)
	tests/benchmarks/converge.sh

clean: lab-down
	rm -rf reports .lab/facts
