"""Unit tests of the backup roles' logic (controller side, no containers): retention by arrival time,
forged-time detection, anomaly rules, schedules from the RPO, htpasswd lines, establishment options, secrets."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rempart_backup_server import admin, anomaly, retention
from rempart_backup_server import config as server_config
from rempart_host.restic import parse_time

from rempart.model.establishment import Dataset, backup_schedule
from rempart.model.validation import load_valid
from rempart.vault.layout import REPOSITORY_PASSWORDS, REST_SERVER_PASSWORDS, required_secrets

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


filters = _load("rempart_backup_filters", ROOT / "plugins/filter/rempart_backup.py")
POLICY = {"daily": 7, "monthly": 12, "yearly": 5, "keep_last": 3}
DAY = 86400.0


def _ledger(entries):
    return [{"event": "snapshot", "id": i, "arrived": a, "trusted": t} for i, a, t in entries]


def test_retention_keeps_newest_per_day_month_year_by_arrival():
    now = time.time()
    ledger = _ledger((f"s{d:03d}", now - d * DAY, True) for d in range(0, 400))
    present = {e["id"] for e in ledger}
    forget = set(retention.plan_forget(ledger, present, POLICY))
    kept = present - forget
    assert {f"s{d:03d}" for d in range(7)} <= kept  # the last 7 days
    assert 12 + 5 <= len(kept) <= 7 + 12 + 5 + 3  # buckets overlap: the newest of a day is also its month
    assert any(int(i[1:]) > 330 for i in kept)  # the newest of last year is kept too


def test_forged_and_unledgered_snapshots_are_never_forgotten_nor_counted():
    now = time.time()
    real = _ledger((f"r{d}", now - d * DAY, True) for d in range(5))
    forged = _ledger((f"f{n}", now, False) for n in range(50))  # a burst in one job, claimed times anywhere
    present = {e["id"] for e in real + forged} | {"unledgered"}
    forget = retention.plan_forget(real + forged, present, POLICY)
    assert forget == []  # five real daily snapshots: all within policy, the burst takes no slot
    assert not set(forget) & ({e["id"] for e in forged} | {"unledgered"})


def test_a_burst_of_trusted_looking_arrivals_cannot_push_out_older_days():
    now = time.time()
    older = _ledger((f"d{d}", now - d * DAY, True) for d in range(1, 7))
    burst = _ledger((f"b{n}", now - n, True) for n in range(50))  # even if 50 arrived today
    forget = set(retention.plan_forget(older + burst, {e["id"] for e in older + burst}, POLICY))
    assert not forget & {e["id"] for e in older}  # one slot per day: today's burst keeps only its newest


def test_trust_problems_detect_forged_time_bursts_and_wrong_host():
    started, arrived = 1_800_000_000.0, 1_800_000_060.0
    ok = {"id": "a" * 64, "time": "2027-01-15T08:00:30.123456789+00:00", "hostname": "files-01"}
    dataset = {"host": "files-01"}
    assert anomaly.trust_problems([ok | {"time": _iso(started + 10)}], dataset, started, arrived, 900) == []
    past = ok | {"time": "1990-06-01T00:00:00Z"}
    assert any("forged-time" in p for p in anomaly.trust_problems([past], dataset, started, arrived, 900))
    assert any(
        "unexpected-snapshots" in p for p in anomaly.trust_problems([ok, ok], dataset, started, arrived, 900)
    )
    other = ok | {"time": _iso(started + 10), "hostname": "dpi-db-01"}
    assert any("wrong-host" in p for p in anomaly.trust_problems([other], dataset, started, arrived, 900))


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


THRESHOLDS = {"history": 7, "changed_ratio": 0.5, "removed_ratio": 0.5, "entropy_share": 0.5,
              "volume_factor": 10, "volume_floor_bytes": 1 << 20}  # fmt: skip
NORMAL = {
    "first": False,
    "changed_ratio": 0.02,
    "removed_ratio": 0.0,
    "entropy_share": 0.0,
    "added_bytes": 10_000,
}


def test_anomaly_rules():
    history = [dict(NORMAL, first=True, changed_ratio=1.0), NORMAL, NORMAL]
    assert anomaly.evaluate_anomaly(NORMAL, history, "files", THRESHOLDS) == []
    encrypted = dict(NORMAL, changed_ratio=0.9, entropy_share=1.0, added_bytes=5_000_000)
    reasons = " ".join(anomaly.evaluate_anomaly(encrypted, history, "files", THRESHOLDS))
    assert "mass-change" in reasons and "high-entropy" in reasons and "volume" in reasons
    wiped = dict(NORMAL, removed_ratio=0.8, touched_files=0, removed_files=400)
    assert "mass-deletion" in " ".join(anomaly.evaluate_anomaly(wiped, history, "files", THRESHOLDS))
    # a one-file dataset (a dump kept as a file) changes entirely every time: not a mass change
    single = dict(NORMAL, changed_ratio=1.0, touched_files=1)
    assert anomaly.evaluate_anomaly(single, history, "files", THRESHOLDS) == []
    # a database dump changes entirely every time: no mass-change rule for it
    assert anomaly.evaluate_anomaly(dict(NORMAL, changed_ratio=1.0), history, "postgresql", THRESHOLDS) == []
    # a dataset of images is random by nature: high entropy is its median, not an anomaly
    images = [dict(NORMAL, entropy_share=1.0)] * 3
    assert anomaly.evaluate_anomaly(dict(NORMAL, entropy_share=1.0), images, "files", THRESHOLDS) == []
    # the first snapshot has no baseline
    assert anomaly.evaluate_anomaly(dict(encrypted, first=True), [], "files", THRESHOLDS) == []


def test_shrink_rules_catch_a_dropped_database_but_not_a_normal_day():
    dump = dict(NORMAL, changed_ratio=1.0, processed_bytes=40_000_000, rows=250_000, tables=12)
    history = [dict(dump, first=True), dump, dict(dump, processed_bytes=41_000_000, rows=251_000)]
    daily = dict(dump, processed_bytes=40_500_000, rows=250_400, tables_lost=0, previous_tables=12)
    assert anomaly.evaluate_anomaly(daily, history, "postgresql", THRESHOLDS) == []
    # DROP DATABASE + an empty one in its place: the dump shrinks to its header, nothing is "added"
    dropped = dict(dump, processed_bytes=900, added_bytes=0, rows=0, tables=0, tables_lost=12,
                   lost_tables=[f"public.t{i}" for i in range(12)], previous_tables=12)  # fmt: skip
    reasons = " ".join(anomaly.evaluate_anomaly(dropped, history, "postgresql", THRESHOLDS))
    assert "shrink" in reasons and "rows-lost" in reasons and "tables-lost: 12 of 12" in reasons
    # the tables are there but emptied (TRUNCATE): rows and size give it away
    truncated = dict(dump, processed_bytes=2_000_000, rows=1_000, tables_lost=0, previous_tables=12)
    reasons = " ".join(anomaly.evaluate_anomaly(truncated, history, "postgresql", THRESHOLDS))
    assert "shrink" in reasons and "rows-lost" in reasons and "tables-lost" not in reasons
    # one table of twelve dropped by a migration: below tables_lost_ratio
    migrated = dict(daily, tables_lost=1, lost_tables=["public.old_audit"], previous_tables=12)
    assert (
        anomaly.evaluate_anomaly(migrated, history, "postgresql", THRESHOLDS | {"tables_lost_ratio": 0.25})
        == []
    )
    # a share whose files were truncated or wiped shrinks too; a tiny dataset halving by a few KiB does not fire
    share = dict(NORMAL, processed_bytes=5_000_000_000)
    assert "shrink" in " ".join(
        anomaly.evaluate_anomaly(dict(share, processed_bytes=1_000_000_000), [share] * 3, "files", THRESHOLDS)
    )
    tiny = dict(NORMAL, processed_bytes=40_000)
    assert anomaly.evaluate_anomaly(dict(tiny, processed_bytes=15_000), [tiny] * 3, "files", THRESHOLDS) == []


def test_table_changes_compare_with_the_previous_dump():
    assert anomaly.table_changes(None, {"public.a": 1}) == {}
    changes = anomaly.table_changes({"public.a": 3}, {"public.a": 2, "public.b": 5})
    assert changes == {
        "rows": 3,
        "tables": 1,
        "tables_lost": 1,
        "lost_tables": ["public.b"],
        "previous_tables": 2,
    }
    assert anomaly.table_changes({"public.a": 3}, None) == {"rows": 3, "tables": 1}


def test_entropy_and_time_parsing():
    assert anomaly.shannon_entropy(bytes(range(256)) * 64) == pytest.approx(8.0)
    assert anomaly.shannon_entropy(b"a" * 1000) == 0.0
    assert parse_time("2026-11-30T17:07:39.105836746Z") == pytest.approx(1796058459.105836)


@pytest.mark.parametrize(
    ("rpo", "expected"),
    [(1, "*-*-* 00/1:05:00"), (5, "*-*-* 00/4:05:00"), (12, "*-*-* 00/12:05:00"), (24, "*-*-* 01:05:00"),
     (72, "*-*-* 01:05:00"), (168, "Sun *-*-* 01:05:00")],
)  # fmt: skip
def test_schedule_is_never_less_frequent_than_the_rpo(rpo, expected):
    assert backup_schedule(rpo, 5)[0] == expected


def test_htpasswd_line_is_stable_sha():
    line = filters.rempart_htpasswd_sha("secret")
    assert line == "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=" == filters.rempart_htpasswd_sha("secret")


def test_dataset_backup_options_default_safely_and_refuse_nonsense():
    base = {"name": "pacs", "host": "pacs-01", "kind": "files", "paths": ["/srv/pacs"], "criticality": "important",
            "rpo_hours": 24, "rto_hours": 72}  # fmt: skip
    assert Dataset.model_validate(base).backup.compression == "auto"
    assert Dataset.model_validate(base | {"backup": {"compression": "off"}}).backup.compression == "off"
    for bad in ({"compression": "zip"}, {"read_concurrency": 0}, {"limit_upload_kib": 1}, {"unknown": 1}):
        with pytest.raises(ValueError):
            Dataset.model_validate(base | {"backup": bad})


def test_init_vault_generates_the_rest_server_passwords():
    import yaml

    data = yaml.safe_load((ROOT / "molecule/backup/inventory/group_vars/all/establishment.yml").read_text())
    establishment = load_valid(data["establishment"])
    needed = required_secrets(establishment)
    names = {d.name for d in establishment.datasets}
    assert set(needed[REST_SERVER_PASSWORDS]) == names == set(needed[REPOSITORY_PASSWORDS])


@pytest.fixture
def two_repositories(tmp_path):
    """Two real restic repositories (the host's restic), one snapshot each, and the server's config for them."""
    config = {
        "datasets": {"partages": {"host": "files-01"}, "dpi": {"host": "db-01"}},
        "repos_dir": str(tmp_path / "repos"),
        "secrets_dir": str(tmp_path / "secrets"),
        "state_dir": str(tmp_path / "state"),
        "restic": "/usr/bin/restic",
    }
    (tmp_path / "secrets").mkdir()
    sources = {}
    for name in config["datasets"]:
        (tmp_path / "secrets" / f"{name}.json").write_text(
            f'{{"repository_password": "pw-{name}-0123456789"}}'
        )
        source = tmp_path / "data" / name
        (source / "sub").mkdir(parents=True)
        (source / "sub" / "a.bin").write_bytes(os.urandom(300_000))
        (source / "note.txt").write_text(f"compte rendu {name}\n")
        env = server_config.restic_env(config, name)
        subprocess.run(["restic", "init", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(["restic", "backup", "-q", str(source)], env=env, check=True, capture_output=True)
        sources[name] = source
        snapshot = json.loads(subprocess.run(["restic", "snapshots", "--json"], env=env, check=True,
                                             capture_output=True, text=True).stdout)[0]["id"]  # fmt: skip
        ledger = tmp_path / "state" / "ledger" / f"{name}.jsonl"
        ledger.parent.mkdir(parents=True, exist_ok=True)
        ledger.write_text(json.dumps({"event": "snapshot", "id": snapshot, "arrived": time.time(), "admitted": True,
                                      "trusted": True, "anomaly": []}) + "\n")  # fmt: skip
    return config, sources


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_restore_all_restores_every_dataset_byte_identical(two_repositories, tmp_path, capsys):
    config, sources = two_repositories
    target = tmp_path / "restored"
    trusted = {name: json.loads(Path(config["state_dir"], "ledger", f"{name}.jsonl").read_text())["id"]
               for name in sources}  # fmt: skip
    # a newer snapshot the server never admitted (planted by a client): `latest`, never restored by default
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "ransom.txt").write_text("pay\n")
    env = server_config.restic_env(config, "dpi")
    subprocess.run(["restic", "backup", "-q", str(planted)], env=env, check=True, capture_output=True)
    assert admin.restore_all(config, str(target), [], None, jobs=2) == server_config.EXIT_OK
    for source in sources.values():
        assert _tree(target / source.relative_to("/")) == _tree(source)
    assert not (target / planted.relative_to("/")).exists()
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((p["dataset"], p["rc"], p["snapshot"]) for p in printed) == [
        ("dpi", 0, trusted["dpi"]), ("partages", 0, trusted["partages"])]  # fmt: skip


def test_restore_all_fails_loudly_when_one_dataset_fails(two_repositories, tmp_path, capsys):
    config, _ = two_repositories
    Path(config["secrets_dir"], "dpi.json").write_text('{"repository_password": "wrong"}')
    assert admin.restore_all(config, str(tmp_path / "r"), [], None, jobs=2) == server_config.EXIT_FAILED
    assert "FAILED: dpi" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown dataset 'imagerie'"):
        admin.restore_all(config, str(tmp_path / "r"), ["imagerie"], None, jobs=1)
    assert (
        admin.restore_all(config, str(tmp_path / "r"), ["partages"], "latest", jobs=1)
        == server_config.EXIT_FAILED
    )
    assert "'latest' is what a client wrote last" in capsys.readouterr().out


def test_timer_files_one_per_dataset_and_flow_with_its_schedule():
    datasets = {"partages": {"schedule": "*-*-* 00/6:07:00"}, "dpi": {"schedule": "*-*-* 01:03:00"}}
    files = filters.rempart_timer_files(datasets, "-340999911", "*-*-* 03:30:00", "Sun *-*-* 05:00:00")
    by_path = {f["path"]: f["content"] for f in files}
    assert len(by_path) == 6 and {f["mode"] for f in files} == {"0644"}
    partages = by_path["/etc/systemd/system/rempart-backup-340999911-partages.timer"]
    assert "OnCalendar=*-*-* 00/6:07:00\n" in partages
    assert "Unit=rempart-backup-340999911@partages.service\n" in partages
    assert (
        "OnCalendar=*-*-* 03:30:00\n" in by_path["/etc/systemd/system/rempart-retention-340999911-dpi.timer"]
    )
    assert (
        "OnCalendar=Sun *-*-* 05:00:00\n" in by_path["/etc/systemd/system/rempart-check-340999911-dpi.timer"]
    )


def test_secret_files_are_group_readable_json_per_dataset():
    files = filters.rempart_secret_files(
        ["partages"], {"partages": "repo-pw"}, {"partages": "http-pw"}, "/etc/rempart/secrets", "rempart"
    )
    # diff: False: --check --diff never prints a secret
    assert files == [
        {"path": "/etc/rempart/secrets/partages.json", "group": "rempart", "mode": "0640", "diff": False,
         "content": '{\n    "http_password": "http-pw",\n    "repository_password": "repo-pw"\n}\n'}
    ]  # fmt: skip


def test_init_creates_only_the_missing_repositories(two_repositories, capsys):
    config, _ = two_repositories
    before = Path(config["repos_dir"], "dpi", "config").read_bytes()
    shutil.rmtree(Path(config["repos_dir"], "partages"))
    assert admin.init_missing(config, [], jobs=2) == server_config.EXIT_OK
    assert capsys.readouterr().out.split() == ["partages"]
    assert Path(config["repos_dir"], "partages", "config").exists()
    assert Path(config["repos_dir"], "dpi", "config").read_bytes() == before  # untouched
    assert admin.init_missing(config, [], jobs=2) == server_config.EXIT_OK
    assert capsys.readouterr().out == ""
