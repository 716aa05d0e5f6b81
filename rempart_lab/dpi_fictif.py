#!/usr/bin/python3
"""FICTITIOUS patient-record database for labs and demonstrations (DONNÉES FICTIVES).

Seeded, so the same seed always gives the same hospital: units and rooms, patients with French names and
IPP numbers, stays, allergies, active prescriptions, care plan, recent results and unit schedules.
Nothing here comes from a real person. Standard library only (runs on the target). Lab code, never shipped in
the collection: lab/fictitious-records.yml copies it to the records host and loads its output there.

    dpi_fictif.py --seed 42 --patients 2000 > dpi.sql      # then: psql -d dpi -f dpi.sql
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from collections.abc import Iterator

NOMS = [
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefebvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefèvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Garcia",
    "Perrin",
    "Robin",
    "Clément",
    "Morin",
    "Nicolas",
    "Henry",
    "Roussel",
    "Mathieu",
    "Gautier",
    "Masson",
    "Marchand",
    "Duval",
    "Denis",
    "Dumont",
    "Marie",
    "Lemaire",
    "Noël",
    "Meyer",
    "Dufour",
    "Meunier",
    "Brun",
    "Blanchard",
    "Giraud",
    "Joly",
    "Rivière",
    "Lucas",
    "Brunet",
    "Gaillard",
    "Barbier",
    "Arnaud",
    "Martinez",
    "Gérard",
    "Roche",
    "Renard",
    "Schmitt",
    "Roy",
    "Leroux",
    "Colin",
    "Vidal",
    "Caron",
    "Picard",
    "Roger",
    "Fabre",
    "Aubert",
    "Lemoine",
    "Renaud",
    "Dumas",
    "Lacroix",
    "Olivier",
    "Philippe",
    "Bourgeois",
    "Pierre",
    "Benoît",
    "Rey",
    "Leclerc",
    "Payet",
    "Rolland",
    "Leclercq",
    "Guillaume",
    "Lecomte",
    "Lopez",
    "Jean",
    "Dupuy",
    "Guillot",
    "Hubert",
    "Berger",
    "Carpentier",
    "Sanchez",
    "Dupuis",
    "Moulin",
    "Louis",
    "Deschamps",
    "Huet",
    "Vasseur",
    "Perez",
    "Boucher",
    "Fleury",
    "Royer",
    "Klein",
    "Jacquet",
    "Adam",
    "Paris",
    "Poirier",
    "Marty",
    "Aubry",
    "Guyot",
    "Carré",
    "Charles",
    "Renault",
    "Charpentier",
    "Ménard",
    "Maillard",
    "Baron",
    "Bertin",
    "Bailly",
    "Hervé",
    "Schneider",
    "Fernandez",
    "Le",
    "Gall",
    "Collet",
    "Léger",
    "Bouvier",
    "Julien",
    "Prévost",
    "Millet",
    "Perrot",
    "Daniel",
    "Le",
    "Roux",
    "Cousin",
    "Germain",
    "Breton",
    "Besson",
    "Langlois",
    "Rémy",
    "Le",
    "Goff",
    "Pelletier",
    "Lévêque",
    "Perrier",
    "Leblanc",
    "Barré",
    "Lebrun",
    "Marchal",
    "Weber",
    "Mallet",
    "Hamon",
    "Boulanger",
    "Jacob",
    "Monnier",
    "Michaud",
    "Rodriguez",
    "Guichard",
    "Gillet",
    "Étienne",
    "Grondin",
    "Poulain",
    "Tessier",
    "Chevallier",
    "Collin",
    "Chauvin",
    "Da",
    "Silva",
    "Bouchet",
    "Gay",
    "Lemaître",
    "Bénard",
    "Maréchal",
    "Humbert",
]
PRENOMS_F = [
    "Marie",
    "Jeanne",
    "Françoise",
    "Monique",
    "Catherine",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Anne",
    "Martine",
    "Christine",
    "Sophie",
    "Valérie",
    "Chantal",
    "Nicole",
    "Sandrine",
    "Véronique",
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Emma",
    "Inès",
    "Louise",
    "Jade",
    "Alice",
    "Lina",
    "Rose",
    "Anna",
    "Élise",
    "Juliette",
    "Margaux",
    "Océane",
    "Pauline",
    "Lucie",
    "Aurélie",
    "Céline",
    "Hélène",
    "Brigitte",
    "Odile",
    "Geneviève",
    "Thérèse",
]
PRENOMS_M = [
    "Jean",
    "Pierre",
    "Michel",
    "André",
    "Philippe",
    "René",
    "Louis",
    "Alain",
    "Jacques",
    "Bernard",
    "Marcel",
    "Daniel",
    "Roger",
    "Robert",
    "Paul",
    "Claude",
    "Christian",
    "Henri",
    "Georges",
    "Nicolas",
    "François",
    "Patrick",
    "Gérard",
    "Christophe",
    "Joseph",
    "Julien",
    "Lucas",
    "Hugo",
    "Gabriel",
    "Léo",
    "Arthur",
    "Louis",
    "Jules",
    "Raphaël",
    "Adam",
    "Nathan",
    "Thomas",
    "Antoine",
    "Maxime",
    "Étienne",
    "Yves",
    "Olivier",
    "Thierry",
    "Pascal",
]
UNITES = (
    ("CARDIO", "Cardiologie", "Bâtiment A", 2, 30),
    ("PNEUMO", "Pneumologie", "Bâtiment A", 3, 28),
    ("MED-INT", "Médecine interne", "Bâtiment A", 4, 32),
    ("GERIA", "Gériatrie", "Bâtiment B", 1, 40),
    ("CHIR-ORTHO", "Chirurgie orthopédique", "Bâtiment B", 2, 28),
    ("CHIR-VISC", "Chirurgie viscérale", "Bâtiment B", 3, 26),
    ("NEURO", "Neurologie", "Bâtiment C", 2, 24),
    ("ONCO", "Oncologie", "Bâtiment C", 3, 24),
    ("REA", "Réanimation polyvalente", "Bâtiment C", 1, 12),
    ("MATER", "Maternité", "Bâtiment D", 1, 30),
    ("PEDIA", "Pédiatrie", "Bâtiment D", 2, 24),
    ("PSY", "Psychiatrie adulte", "Bâtiment E", 1, 30),
)
ALLERGENES = (
    ("Pénicillines", "urticaire généralisée", "grave"),
    ("Amoxicilline", "éruption cutanée", "modérée"),
    ("Céphalosporines", "œdème de Quincke", "grave"),
    ("Sulfamides", "éruption cutanée", "modérée"),
    ("Iode (produits de contraste)", "choc anaphylactique", "grave"),
    ("Latex", "dermite de contact", "modérée"),
    ("Aspirine", "bronchospasme", "grave"),
    ("AINS", "œdème", "modérée"),
    ("Codéine", "nausées, vomissements", "légère"),
    ("Morphine", "prurit", "légère"),
    ("Arachide", "choc anaphylactique", "grave"),
    ("Fruits à coque", "œdème labial", "modérée"),
    ("Œuf", "urticaire", "légère"),
    ("Sparadrap", "irritation cutanée", "légère"),
)
MEDICAMENTS = (
    ("Paracétamol", "1 g", "per os", "toutes les 6 h si douleur"),
    ("Énoxaparine", "4 000 UI", "sous-cutanée", "1 fois par jour"),
    ("Furosémide", "40 mg", "per os", "le matin"),
    ("Amoxicilline", "1 g", "per os", "3 fois par jour"),
    ("Ceftriaxone", "1 g", "intraveineuse", "1 fois par jour"),
    ("Insuline glargine", "18 UI", "sous-cutanée", "au coucher"),
    ("Insuline asparte", "selon protocole", "sous-cutanée", "avant les repas"),
    ("Bisoprolol", "2,5 mg", "per os", "le matin"),
    ("Ramipril", "5 mg", "per os", "le matin"),
    ("Atorvastatine", "40 mg", "per os", "le soir"),
    ("Oméprazole", "20 mg", "per os", "le matin"),
    ("Morphine", "5 mg", "sous-cutanée", "toutes les 4 h si douleur"),
    ("Tramadol", "50 mg", "per os", "toutes les 8 h si douleur"),
    ("Lévothyroxine", "75 µg", "per os", "le matin à jeun"),
    ("Apixaban", "5 mg", "per os", "2 fois par jour"),
    ("Metformine", "850 mg", "per os", "2 fois par jour"),
    ("Ondansétron", "4 mg", "intraveineuse", "si nausées"),
    ("Chlorure de potassium", "1 g", "per os", "3 fois par jour"),
    ("Sérum physiologique", "1 L / 24 h", "intraveineuse", "en continu"),
    ("Oxygène", "2 L/min", "lunettes nasales", "en continu"),
)
SOINS = (
    ("Surveillance des constantes (PA, FC, T°, SpO2)", "08:00, 14:00, 20:00"),
    ("Glycémie capillaire", "07:30, 11:30, 18:30"),
    ("Pansement", "10:00"),
    ("Prévention d'escarres, changement de position", "toutes les 3 h"),
    ("Surveillance de la douleur (EVA)", "toutes les 4 h"),
    ("Bilan entrées / sorties", "06:00"),
    ("Aide à la toilette", "09:00"),
    ("Lever au fauteuil", "10:30"),
    ("Surveillance de la perfusion", "toutes les 2 h"),
    ("Kinésithérapie respiratoire", "11:00"),
    ("Pesée", "07:00"),
)
EXAMENS = (
    ("Hémoglobine", "g/dL", 12.0, 17.0, 7.0, 19.0),
    ("Leucocytes", "G/L", 4.0, 10.0, 1.5, 25.0),
    ("Plaquettes", "G/L", 150, 400, 40, 650),
    ("Sodium", "mmol/L", 135, 145, 122, 155),
    ("Potassium", "mmol/L", 3.5, 5.0, 2.6, 6.5),
    ("Créatinine", "µmol/L", 50, 110, 35, 450),
    ("CRP", "mg/L", 0, 5, 0, 250),
    ("Glycémie", "mmol/L", 3.9, 6.1, 2.5, 22.0),
    ("INR", "", 0.8, 1.2, 0.8, 4.5),
    ("Troponine", "ng/L", 0, 14, 0, 900),
)
IMAGERIE = (
    "Radiographie thoracique : pas d'anomalie pleuro-parenchymateuse.",
    "Radiographie thoracique : opacité basale droite, à confronter à la clinique.",
    "Scanner cérébral : pas de lésion hémorragique.",
    "Échographie abdominale : vésicule lithiasique, pas de dilatation des voies biliaires.",
    "ECG : rythme sinusal, pas de trouble de la repolarisation.",
    "ECG : fibrillation atriale à 95/min.",
)
MEDECINS = ("Dr Aubert", "Dr Benali", "Dr Carpentier", "Dr Diallo", "Dr Enault", "Dr Fabre", "Dr Guillon",
            "Dr Hoarau", "Dr Idrissi", "Dr Jacquemin", "Dr Kerboul", "Dr Lemoine")  # fmt: skip
MOTIFS = ("Décompensation cardiaque", "Pneumopathie", "Chute à domicile", "Fracture du col du fémur",
          "Bilan d'altération de l'état général", "Douleur thoracique", "AVC ischémique", "Cure de chimiothérapie",
          "Occlusion intestinale", "Pyélonéphrite", "Accouchement", "Bronchiolite", "Sepsis", "Diabète déséquilibré",
          "Épisode dépressif", "Insuffisance respiratoire aiguë")  # fmt: skip

SCHEMA = """
CREATE TABLE unite (code text PRIMARY KEY, libelle text NOT NULL, batiment text NOT NULL, etage int NOT NULL,
                    telephone text NOT NULL);
CREATE TABLE patient (ipp text PRIMARY KEY, nom text NOT NULL, prenom text NOT NULL, sexe char(1) NOT NULL,
                      date_naissance date NOT NULL);
CREATE TABLE sejour (id serial PRIMARY KEY, ipp text NOT NULL REFERENCES patient, unite text NOT NULL REFERENCES unite,
                     chambre text NOT NULL, lit text NOT NULL, date_entree timestamptz NOT NULL,
                     date_sortie timestamptz, medecin text NOT NULL, motif text NOT NULL);
CREATE TABLE allergie (id serial PRIMARY KEY, ipp text NOT NULL REFERENCES patient, substance text NOT NULL,
                       reaction text NOT NULL, gravite text NOT NULL);
CREATE TABLE prescription (id serial PRIMARY KEY, ipp text NOT NULL REFERENCES patient, medicament text NOT NULL,
                           dose text NOT NULL, voie text NOT NULL, frequence text NOT NULL,
                           debut timestamptz NOT NULL, fin timestamptz, prescripteur text NOT NULL);
CREATE TABLE soin (id serial PRIMARY KEY, ipp text NOT NULL REFERENCES patient, acte text NOT NULL,
                   horaires text NOT NULL, consigne text NOT NULL DEFAULT '');
CREATE TABLE resultat (id serial PRIMARY KEY, ipp text NOT NULL REFERENCES patient, date_resultat timestamptz NOT NULL,
                       examen text NOT NULL, valeur text NOT NULL, unite_mesure text NOT NULL, normes text NOT NULL,
                       anormal boolean NOT NULL);
CREATE TABLE planning (id serial PRIMARY KEY, unite text NOT NULL REFERENCES unite, debut timestamptz NOT NULL,
                       libelle text NOT NULL, categorie text NOT NULL, ipp text REFERENCES patient);
"""


def _copy(table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> str:
    def cell(value: object) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")

    body = "".join("\t".join(cell(v) for v in row) + "\n" for row in rows)
    return f"COPY {table} ({', '.join(columns)}) FROM stdin;\n{body}\\.\n"


def generate(seed: int, patients: int, now: dt.datetime) -> dict[str, list[tuple]]:
    """Rows per table. Deterministic for a given seed, patient count and reference time."""
    rng = random.Random(seed)
    tables: dict[str, list[tuple]] = {k: [] for k in ("unite", "patient", "sejour", "allergie", "prescription",
                                                       "soin", "resultat", "planning")}  # fmt: skip
    # Enough rooms for every patient of the census (2/3 of the rooms are doubles), 10 % of beds left free.
    base_beds = sum(rooms * 5 // 3 for *_, rooms in UNITES)
    scale = max(1.0, patients * 1.1 / base_beds)
    beds: list[tuple[str, str, str]] = []
    for index, (code, libelle, batiment, etage, rooms) in enumerate(UNITES):
        tables["unite"].append((code, libelle, batiment, etage, f"04 99 00 {10 + index:02d} {etage:02d}"))
        for room in range(1, round(rooms * scale) + 1):
            number = f"{etage}{index % 10}{room:02d}"  # room 7 of unit 3 on floor 2: 2307; room 112: 23112
            for bed in ("A", "B") if room % 3 else ("A",):
                beds.append((code, number, bed))
    rng.shuffle(beds)
    # patients hospitalised now (the census) + 5 % already discharged (in the records, not in the census)
    ipps = rng.sample(range(10_000_000, 99_999_999), patients + patients // 20)
    hour = dt.timedelta(hours=1)
    for position, ipp_number in enumerate(ipps):
        ipp = str(ipp_number)
        sexe = rng.choice("FM")
        prenom = rng.choice(PRENOMS_F if sexe == "F" else PRENOMS_M)
        naissance = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 93))
        tables["patient"].append((ipp, rng.choice(NOMS).upper(), prenom, sexe, naissance.isoformat()))
        entree = now - hour * rng.randrange(2, 24 * 20)
        if position < patients:  # hospitalised now
            unite, chambre, lit = beds[position]
            sortie = None
        else:  # discharged: in the records, not in the census
            unite, chambre, lit = rng.choice(beds)
            sortie = entree + hour * rng.randrange(24, 24 * 8)
            entree -= dt.timedelta(days=30)
        tables["sejour"].append((ipp, unite, chambre, lit, entree.isoformat(), sortie and sortie.isoformat(),
                                 rng.choice(MEDECINS), rng.choice(MOTIFS)))  # fmt: skip
        for substance, reaction, gravite in rng.sample(ALLERGENES, rng.choice((0, 0, 0, 1, 1, 2))):
            tables["allergie"].append((ipp, substance, reaction, gravite))
        for medicament, dose, voie, frequence in rng.sample(MEDICAMENTS, rng.randrange(1, 7)):
            debut = entree + hour * rng.randrange(0, 12)
            fin = None if rng.random() < 0.8 else debut + hour * rng.randrange(24, 72)
            tables["prescription"].append((ipp, medicament, dose, voie, frequence, debut.isoformat(),
                                           fin and fin.isoformat(), rng.choice(MEDECINS)))  # fmt: skip
        for acte, horaires in rng.sample(SOINS, rng.randrange(2, 6)):
            tables["soin"].append((ipp, acte, horaires, ""))
        for examen, unite_mesure, low, high, worst_low, worst_high in rng.sample(
            EXAMENS, rng.randrange(2, 7)
        ):
            quand = now - hour * rng.randrange(1, 24 * 10)
            value = rng.uniform(low, high) if rng.random() < 0.75 else rng.uniform(worst_low, worst_high)
            anormal = not (low <= value <= high)
            text = f"{value:.1f}".replace(".", ",")
            tables["resultat"].append((ipp, quand.isoformat(), examen, text, unite_mesure,
                                       f"{low} \u2013 {high}".replace(".", ","), anormal))  # fmt: skip
        if rng.random() < 0.3:
            quand = now - hour * rng.randrange(1, 24 * 5)
            tables["resultat"].append(
                (ipp, quand.isoformat(), "Imagerie / ECG", rng.choice(IMAGERIE), "", "", False)
            )
        if sortie is None and rng.random() < 0.25:
            rendez_vous = now + dt.timedelta(minutes=30 * rng.randrange(1, 96))
            examen = rng.choice(("Scanner", "IRM", "Échographie", "Consultation d'anesthésie", "Bloc opératoire",
                                 "Endoscopie", "Kinésithérapie"))  # fmt: skip
            tables["planning"].append(
                (unite, rendez_vous.isoformat(), f"{examen}", "rendez-vous patient", ipp)
            )
    for code, *_ in UNITES:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for offset in range(0, 3):
            for hour_of_day, libelle in ((7, "Relève équipe de jour"), (13, "Relève équipe d'après-midi"),
                                         (21, "Relève équipe de nuit"), (10, "Visite médicale"),
                                         (15, "Staff pluridisciplinaire")):  # fmt: skip
                when = day + dt.timedelta(days=offset, hours=hour_of_day)
                tables["planning"].append((code, when.isoformat(), libelle, "organisation du service", None))
    return tables


COLUMNS = {
    "unite": ("code", "libelle", "batiment", "etage", "telephone"),
    "patient": ("ipp", "nom", "prenom", "sexe", "date_naissance"),
    "sejour": ("ipp", "unite", "chambre", "lit", "date_entree", "date_sortie", "medecin", "motif"),
    "allergie": ("ipp", "substance", "reaction", "gravite"),
    "prescription": ("ipp", "medicament", "dose", "voie", "frequence", "debut", "fin", "prescripteur"),
    "soin": ("ipp", "acte", "horaires", "consigne"),
    "resultat": ("ipp", "date_resultat", "examen", "valeur", "unite_mesure", "normes", "anormal"),
    "planning": ("unite", "debut", "libelle", "categorie", "ipp"),
}


def to_sql(tables: dict[str, list[tuple]], seed: int) -> str:
    parts = ["-- DONNÉES FICTIVES générées par dpi_fictif.py (aucune personne réelle)\n", "BEGIN;\n", SCHEMA]
    parts += [_copy(name, COLUMNS[name], iter(rows)) for name, rows in tables.items()]
    parts.append(f"COMMENT ON TABLE patient IS 'DONNÉES FICTIVES (dpi_fictif.py, graine {seed})';\nCOMMIT;\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--patients", type=int, default=2000)
    args = parser.parse_args(argv)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sys.stdout.write(to_sql(generate(args.seed, args.patients, now), args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
