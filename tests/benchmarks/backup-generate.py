#!/usr/bin/python3
"""Generate a hospital-like dataset (stdlib only): SQL dump (35 %), DICOM-like images (45 %, incompressible
pixel data behind a small header), office documents (20 %: half plain text, half zip-compressed like .docx).
Usage: backup-generate.py ROOT SIZE_MIB [change PERCENT]"""

import os
import random
import sys
import zlib

WORDS = [
    "patient",
    "sejour",
    "urgence",
    "cardiologie",
    "pediatrie",
    "reanimation",
    "ordonnance",
    "posologie",
    "prescription",
    "compte-rendu",
    "consultation",
    "hospitalisation",
    "protocole",
    "infirmier",
    "garde",
    "planning",
    "bilan",
    "radiologie",
    "scanner",
    "IRM",
    "biologie",
    "hemoglobine",
    "creatinine",
    "allergie",
    "antecedents",
    "traitement",
    "sortie",
]


def text(rng: random.Random, size: int) -> bytes:
    out, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(12)) + f" {rng.randint(0, 10**6)}\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def generate(root: str, mib: int) -> None:
    rng = random.Random(42)
    total = mib << 20
    sql_dir, dicom_dir, docs_dir = (os.path.join(root, d) for d in ("sql", "dicom", "docs"))
    for d in (sql_dir, dicom_dir, docs_dir):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(sql_dir, "dpi.sql"), "w", encoding="utf-8") as handle:
        written, row = 0, 0
        while written < total * 35 // 100:
            batch = []
            for _ in range(2000):
                row += 1
                batch.append(
                    f"INSERT INTO sejours VALUES ({row}, 'IPP{rng.randint(0, 10**8):08d}', "
                    f"'2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}', "
                    f"'{rng.choice(WORDS)}', '{' '.join(rng.choice(WORDS) for _ in range(6))}', "
                    f"{rng.random() * 1000:.2f});\n"
                )
            chunk = "".join(batch)
            handle.write(chunk)
            written += len(chunk)
    written, n = 0, 0
    while written < total * 45 // 100:
        n += 1
        size = rng.randint(4, 24) << 20
        study = os.path.join(dicom_dir, f"etude-{n // 20:04d}")
        os.makedirs(study, exist_ok=True)
        with open(os.path.join(study, f"image-{n:05d}.dcm"), "wb") as handle:
            handle.write(b"\0" * 128 + b"DICM" + text(rng, 2048))
            handle.write(os.urandom(size))
        written += size
    written, n = 0, 0
    while written < total * 20 // 100:
        n += 1
        service = os.path.join(docs_dir, rng.choice(WORDS[:8]))
        os.makedirs(service, exist_ok=True)
        body = text(rng, rng.randint(20_000, 1_500_000))
        if n % 2:
            path, data = os.path.join(service, f"document-{n:05d}.txt"), body
        else:
            path, data = os.path.join(service, f"document-{n:05d}.docx"), b"PK\3\4" + zlib.compress(body, 6)
        with open(path, "wb") as handle:
            handle.write(data)
        written += len(data)


def change(root: str, percent: float) -> None:
    """Touch ``percent`` % of the files: append to the SQL dump, rewrite parts of documents, add images."""
    rng = random.Random(7)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    for path in rng.sample(files, max(1, int(len(files) * percent / 100))):
        with open(path, "r+b") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(rng.randint(0, max(0, size - 65536)))
            handle.write(os.urandom(65536) if path.endswith(".dcm") else text(rng, 65536))
    with open(os.path.join(root, "sql", "dpi.sql"), "ab") as handle:
        handle.write(text(rng, 4 << 20))


if __name__ == "__main__":
    if sys.argv[3:4] == ["change"]:
        change(sys.argv[1], float(sys.argv[4]))
    else:
        generate(sys.argv[1], int(sys.argv[2]))
