"""The ``crisis`` section of an establishment: who is called in a crisis (reachable without the information system)
and the control of the backup and restore plan printed from it (version, approver, review, paper copies).

The plan (rempart/reports/templates/plan-sauvegarde.html.j2) lists these contacts; the roles every crisis needs are
required: direction, DSI, RSSI, the IT on-call service, CERT Santé and the ARS.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

PLACEHOLDER = "à compléter"  # what the scaffold writes where only the establishment knows the answer


class Role(StrEnum):
    direction = "direction"
    dsi = "dsi"
    rssi = "rssi"
    astreinte = "astreinte"
    cert_sante = "cert_sante"
    ars = "ars"
    dpo = "dpo"
    communication = "communication"
    hebergeur = "hebergeur"  # the offsite copy's (HDS) provider
    editeur = "editeur"  # a software vendor (patient record, PACS…)
    autre = "autre"


REQUIRED_ROLES = (Role.direction, Role.dsi, Role.rssi, Role.astreinte, Role.cert_sante, Role.ars)
ROLE_LABELS = {
    Role.direction: "Direction (directeur ou directrice de crise)",
    Role.dsi: "DSI",
    Role.rssi: "RSSI",
    Role.astreinte: "Astreinte informatique",
    Role.cert_sante: "CERT Santé (signalement d'incident)",
    Role.ars: "ARS (point focal, veille sanitaire)",
    Role.dpo: "Délégué à la protection des données (DPO)",
    Role.communication: "Communication",
    Role.hebergeur: "Hébergeur de la copie hors site (HDS)",
    Role.editeur: "Éditeur de logiciel",
    Role.autre: "Autre",
}
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 .-]{5,24}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    role: Role
    name: Annotated[str, Field(min_length=2, max_length=120)]  # a person, or a service for CERT Santé / ARS
    phone: Phone  # reachable without the hospital's information system (mobile, direct line)
    phone_backup: Phone | None = None
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")] | None = None
    deputy: Annotated[str, Field(min_length=2, max_length=120)] | None = None  # suppléant(e)
    label: Annotated[str, Field(min_length=2, max_length=80)] | None = None  # what "autre"/"editeur" covers

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role] + (f" — {self.label}" if self.label else "")

    @property
    def incomplete(self) -> bool:
        return PLACEHOLDER in self.name.lower() or set(self.phone.replace("+33", "")) <= set("0 .-")


class DocumentControl(_Strict):
    version: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")]
    approver: Annotated[str, Field(min_length=3, max_length=120)]  # who signs the plan (function, name)
    approved_on: date | None = None  # None: not approved yet
    review_months: int = Field(12, ge=1, le=24)
    paper_copies: list[Annotated[str, Field(min_length=3, max_length=120)]] = Field(min_length=1)

    @property
    def next_review(self) -> date | None:
        if self.approved_on is None:
            return None
        months = self.approved_on.month - 1 + self.review_months
        day = min(self.approved_on.day, 28)  # every month has a 28th
        return date(self.approved_on.year + months // 12, months % 12 + 1, day)


class Crisis(_Strict):
    contacts: list[Contact]
    document: DocumentControl

    @model_validator(mode="after")
    def required_roles(self) -> Crisis:
        present = {c.role for c in self.contacts}
        missing = [r.value for r in REQUIRED_ROLES if r not in present]
        if missing:
            raise ValueError(
                f"contacts: no contact for role(s) {', '.join(missing)}; every crisis plan needs "
                f"{', '.join(r.value for r in REQUIRED_ROLES)} (add one entry per role with name and phone)"
            )
        return self

    @property
    def incomplete(self) -> list[Contact]:
        return [c for c in self.contacts if c.incomplete]

    def ordered(self) -> list[Contact]:
        rank = {role: index for index, role in enumerate(Role)}
        return sorted(self.contacts, key=lambda c: rank[c.role])
