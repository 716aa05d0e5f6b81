"""check_rempart (roles/supervision): each condition gives its state naming the dataset, the exit code follows the
Monitoring Plugins conventions, and the output parses with a Nagios perfdata grammar written here independently
of the plugin (quoted labels with accents)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import check_rempart as check  # roles/supervision/files (pytest pythonpath), as deployed
import pytest

HOUR = 3600.0
THRESHOLDS = {
    "backup_age_warning_ratio": 1.0,
    "backup_age_critical_ratio": 2.0,
    "backup_grace_minutes": 60,
    "offsite_lag_warning_hours": 26.0,
    "offsite_lag_critical_hours": 50.0,
    "drill_age_warning_days": 8.0,
    "drill_age_critical_days": 15.0,
    "check_age_warning_days": 8.0,
    "check_age_critical_days": 15.0,
    "quota_warning_percent": 80.0,
    "quota_critical_percent": 95.0,
}

# --------------------------------------------------------------------------- an independent perfdata grammar
# Monitoring Plugins development guidelines, "Performance data":
#   'label'=value[UOM];[warn];[crit];[min];[max]   space separated; label quoted when it holds spaces, = or ';
#   a quote inside a quoted label is doubled; UOM one of s ms us % B KB MB TB c (or none); warn/crit ranges.
_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
_RANGE = rf"@?(?:~|{_NUMBER})?:?(?:{_NUMBER})?"
_PERF = re.compile(
    rf"(?:'(?P<quoted>(?:[^']|'')+)'|(?P<plain>[^'= ]+))=(?P<value>{_NUMBER})(?P<uom>s|ms|us|%|B|KB|MB|TB|c)?"
    rf"(?:;(?P<warn>{_RANGE})?(?:;(?P<crit>{_RANGE})?(?:;(?P<min>{_NUMBER})?(?:;(?P<max>{_NUMBER})?)?)?)?)?"
)


def parse_plugin_output(text: str) -> tuple[str, list[dict[str, str]]]:
    assert text.count("\n") == 1 and text.endswith("\n"), "one status line"
    status, _, perf = text.rstrip("\n").partition("|")
    items, position, perf = [], 0, perf.strip()
    while position < len(perf):
        match = _PERF.match(perf, position)
        assert match, f"perfdata does not parse at {perf[position:]!r}"
        label = match.group("quoted").replace("''", "'") if match.group("quoted") else match.group("plain")
        items.append({**{k: v for k, v in match.groupdict().items() if v is not None}, "label": label})
        position = match.end()
        assert position == len(perf) or perf[position] == " ", f"no space after {match.group(0)!r}"
        position += 1
    return status.strip(), items


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    config = {
        "establishment": "Centre hospitalier du Lab (fictif)",
        "metrics_dir": str(metrics),
        "red_button_flag": str(tmp_path / "red-button.json"),
        "datasets": {
            name: {
                "host": "files-01",
                "rpo_hours": 24,
                "quota_bytes": 1000,
                "offline_copy": True,
                "thresholds": dict(THRESHOLDS),
            }
            for name in ("partages", "imagerie-médicale")
        },
    }
    (tmp_path / "supervision.json").write_text(json.dumps(config), encoding="utf-8")

    class Lab:
        path = tmp_path / "supervision.json"

        def write(self, stem: str, lines: list[str]) -> None:
            (metrics / f"{stem}.prom").write_text("\n".join(lines) + "\n", encoding="utf-8")

        def healthy(self, now: float) -> None:
            for name in config["datasets"]:
                labels = f'dataset="{name}",host="files-01"'
                self.write(f"rempart_backup_{name}", [
                    f"rempart_backup_last_success_timestamp_seconds{{{labels}}} {now - 2 * HOUR}",
                    f"rempart_backup_last_run_success{{{labels}}} 1",
                    f"rempart_backup_consecutive_failures{{{labels}}} 0",
                    f"rempart_backup_anomaly{{{labels}}} 0",
                ])  # fmt: skip
                self.write(f"rempart_hold_{name}", [f"rempart_prune_hold{{{labels}}} 0"])
                self.write(f"rempart_offsite_{name}", [
                    f"rempart_offsite_lag_seconds{{{labels}}} 0", f"rempart_offsite_last_run_success{{{labels}}} 1",
                ])  # fmt: skip
                self.write(f"rempart_check_{name}", [
                    f"rempart_check_last_run_timestamp_seconds{{{labels}}} {now - 86400}",
                    f"rempart_check_success{{{labels}}} 1",
                ])  # fmt: skip
                self.write(f"rempart_quota_{name}", [
                    f"rempart_repository_quota_bytes{{{labels}}} 1000",
                    f"rempart_repository_used_bytes{{{labels}}} 100",
                ])  # fmt: skip
            self.write("rempart_offline", [
                *(f'rempart_offline_copy_last_timestamp_seconds{{dataset="{n}"}} {now - 86400}' for n in config["datasets"]),
                *(f'rempart_offline_copy_stale{{dataset="{n}"}} 0' for n in config["datasets"]),
                "rempart_offline_unknown_media_attached 0",
            ])  # fmt: skip
            self.write("rempart_drill", [
                f"rempart_drill_last_run_timestamp_seconds {now - 86400}",
                *(f'rempart_drill_dataset_success{{dataset="{name}"}} 1' for name in config["datasets"]),
            ])  # fmt: skip

        def run(self, mode: str, *extra: str, capsys: Any) -> tuple[int, str, list[dict[str, str]]]:
            code = check.main(["--mode", mode, "--config", str(self.path), *extra])
            out = capsys.readouterr().out
            status, perf = parse_plugin_output(out)
            return code, status, perf

    return Lab()


def test_healthy_server_is_ok_in_every_mode(lab, capsys):
    lab.healthy(time.time())
    for mode in check.MODES:
        code, status, perf = lab.run(mode, capsys=capsys)
        assert code == 0, status
        assert status.startswith(f"REMPART {check.MODES[mode]} OK - Centre hospitalier du Lab (fictif) : ")
        assert perf
    code, status, perf = lab.run("backups", capsys=capsys)
    assert "OK : imagerie-médicale, partages" in status
    age = next(p for p in perf if p["label"] == "âge sauvegarde imagerie-médicale")
    assert (age["uom"], age["warn"], age["crit"], age["min"]) == ("s", "90000", "176400", "0")


CONDITIONS = [
    # (mode, metrics file, lines, expected exit, words the status names)
    ("backups", "rempart_backup_partages",
     ['rempart_backup_last_success_timestamp_seconds{dataset="partages"} {old}',
      'rempart_backup_last_run_success{dataset="partages"} 1'], 1, "dernière sauvegarde réussie il y a 26.0 h (RPO 24 h)"),
    ("backups", "rempart_backup_partages",
     ['rempart_backup_last_success_timestamp_seconds{dataset="partages"} {older}'], 2,
     "dernière sauvegarde réussie il y a 2.1 j"),
    ("backups", "rempart_backup_partages",
     ['rempart_backup_last_success_timestamp_seconds{dataset="partages"} {now}',
      'rempart_backup_last_run_success{dataset="partages"} 0',
      'rempart_backup_consecutive_failures{dataset="partages"} 3'], 2, "dernier job en échec (3 échec(s)"),
    ("backups", "rempart_hold_partages",
     ['rempart_prune_hold{dataset="partages"} 1', 'rempart_prune_hold_since_timestamp_seconds{dataset="partages"} {now}'],
     2, "rétention suspendue (hold) depuis 0.0 h : vérifier puis rempart-backup-admin clear-hold partages"),
    ("backups", "rempart_backup_partages",
     ['rempart_backup_last_success_timestamp_seconds{dataset="partages"} {now}',
      'rempart_backup_anomaly{dataset="partages"} 1'], 2, "anomalie sur la dernière sauvegarde"),
    ("offsite", "rempart_offsite_partages", ['rempart_offsite_lag_seconds{dataset="partages"} 100000'], 1,
     "copie externalisée en retard de 27.8 h sur la dernière sauvegarde"),
    ("offsite", "rempart_offsite_partages", ['rempart_offsite_lag_seconds{dataset="partages"} 200000'], 2,
     "copie externalisée en retard"),
    ("drill", "rempart_drill",
     ["rempart_drill_last_run_timestamp_seconds {now}", 'rempart_drill_dataset_success{dataset="partages"} 0',
      'rempart_drill_dataset_success{dataset="imagerie-médicale"} 1'], 2, "dernier exercice de restauration en échec"),
    ("repository", "rempart_quota_partages",
     ['rempart_repository_quota_bytes{dataset="partages"} 1000', 'rempart_repository_used_bytes{dataset="partages"} 850'],
     1, "dépôt à 85 % de son quota"),
    ("repository", "rempart_quota_partages",
     ['rempart_repository_quota_bytes{dataset="partages"} 1000', 'rempart_repository_used_bytes{dataset="partages"} 990'],
     2, "dépôt à 99 % de son quota"),
    ("repository", "rempart_quota_partages",
     ['rempart_repository_quota_bytes{dataset="partages"} 1000', 'rempart_repository_used_bytes{dataset="partages"} 500',
      'rempart_repository_quota_exceeded{dataset="partages"} 1'], 2, "dernier job refusé ou coupé au quota du dépôt"),
    ("offline", "rempart_offline",
     ['rempart_offline_copy_last_timestamp_seconds{dataset="partages"} {tendays}', 'rempart_offline_copy_stale{dataset="partages"} 1',
      'rempart_offline_copy_last_timestamp_seconds{dataset="imagerie-médicale"} {now}',
      'rempart_offline_copy_stale{dataset="imagerie-médicale"} 0'], 1,
     "dernière copie hors ligne il y a 10.0 j, plus ancienne que la rotation"),
    ("repository", "rempart_check_partages",
     ['rempart_check_last_run_timestamp_seconds{dataset="partages"} {now}', 'rempart_check_success{dataset="partages"} 0'],
     2, "dernier contrôle d'intégrité en échec"),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "stem", "lines", "code", "words"), CONDITIONS)
def test_each_condition_names_the_dataset_and_recovers(lab, capsys, mode, stem, lines, code, words):
    now = time.time()
    lab.healthy(now)
    values = {"now": now, "old": now - 26 * HOUR, "older": now - 51 * HOUR, "tendays": now - 10 * 86400}
    lab.write(
        stem, [re.sub(r"\{(now|old|older|tendays)\}", lambda m: str(values[m.group(1)]), x) for x in lines]
    )
    found, status, _ = lab.run(mode, capsys=capsys)
    assert found == code, status
    assert f"{check.STATE_NAMES[code]} - " in status
    assert f"partages : {words}" in status, status
    assert "OK : imagerie-médicale" in status
    lab.healthy(now)
    assert lab.run(mode, capsys=capsys)[0] == 0  # recovery returns OK


def test_stale_drill_names_every_dataset(lab, capsys):
    now = time.time()
    lab.healthy(now)
    lab.write("rempart_drill", [
        f"rempart_drill_last_run_timestamp_seconds {now - 10 * 86400}",
        *(f'rempart_drill_dataset_success{{dataset="{n}"}} 1' for n in ("partages", "imagerie-médicale")),
    ])  # fmt: skip
    code, status, _ = lab.run("drill", capsys=capsys)
    assert code == 1
    for name in ("partages", "imagerie-médicale"):
        assert f"{name} : dernier exercice de restauration il y a 10.0 j" in status


def test_missing_metrics(lab, capsys):
    code, status, _ = lab.run("backups", capsys=capsys)
    assert code == 2 and "partages : aucune sauvegarde réussie enregistrée" in status
    code, status, _ = lab.run("offsite", "--dataset", "partages", capsys=capsys)
    assert code == 3 and "aucune métrique de copie externalisée" in status


def test_red_button(lab, capsys):
    lab.healthy(time.time())
    flag = {"state": "isolated", "since": "2026-12-06T09:00:00+00:00", "by": "rssi", "reason": "rançongiciel"}
    Path(json.loads(lab.path.read_text())["red_button_flag"]).write_text(json.dumps(flag))
    code, status, perf = lab.run("redbutton", capsys=capsys)
    assert code == 2 and "serveur isolé (bouton rouge) depuis 2026-12-06T09:00:00+00:00 par rssi" in status
    assert perf == [
        {"label": "isolé", "quoted": "isolé", "value": "1", "warn": "", "crit": "1", "min": "0", "max": "1"}
    ]
    code, status, _ = lab.run("backups", capsys=capsys)
    assert code == 0 and "serveur isolé par le bouton rouge (sauvegardes suspendues)" in status


def test_unknown_dataset_and_bad_config_are_unknown(lab, capsys, tmp_path):
    code, status, _ = lab.run("backups", "--dataset", "dpi", capsys=capsys)
    assert code == 3 and "inconnu(s) : dpi" in status
    assert check.main(["--mode", "backups", "--config", str(tmp_path / "absent.json")]) == 3
    assert "REMPART UNKNOWN - FileNotFoundError" in capsys.readouterr().out
    assert check.main(["--mode", "nope"]) == 3


def test_quote_in_a_label_is_doubled():
    perf = check.Perf("l'âge", 3, "s", 1, 2, 0)
    _, items = parse_plugin_output(f"X OK - y | {perf}\n")
    assert str(perf) == "'l''âge'=3s;1;2;0"
    assert items[0]["label"] == "l'âge"


def test_prometheus_label_escapes():
    assert check.parse_labels(r'dataset="a\"b",host="h\\x"') == {"dataset": 'a"b', "host": "h\\x"}
    with pytest.raises(ValueError):
        check.parse_labels("dataset=unquoted")


# --------------------------------------------------------------------------- the bucket, as rempart offsite-watch sees it


def watch_file(lab, now: float, **state: Any) -> None:
    """The metrics `rempart offsite-watch` itself writes (its own function), into the folder check_rempart reads."""
    import datetime as dt

    from rempart.offsite.verify import RepositoryState
    from rempart.offsite.watch import metrics, watch_findings

    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    fresh = {"partages": moment - dt.timedelta(hours=2), "imagerie-médicale": moment - dt.timedelta(hours=2)}
    repository = RepositoryState(current=40, sampled=40, min_horizon=moment + dt.timedelta(days=44),
                                 newest_snapshot=dict(fresh), refreshed=dict(fresh))  # fmt: skip
    for key, value in state.items():
        setattr(repository, key, value)
    findings = watch_findings(repository, 30, moment, dt.timedelta(hours=30), dt.timedelta(hours=48))
    lab.write(
        "rempart_offsite_watch", metrics("rempart-lab-offsite", repository, findings, moment).splitlines()
    )


def test_offsite_mode_says_when_the_bucket_is_not_watched_from_here(lab, capsys):
    lab.healthy(time.time())
    code, status, _ = lab.run("offsite", capsys=capsys)
    assert code == 0 and "compartiment non surveillé ici" in status


def test_bucket_watch_hidden_objects_and_stale_refresh(lab, capsys):
    import datetime as dt

    now = time.time()
    lab.healthy(now)
    watch_file(lab, now)
    code, status, perf = lab.run("offsite", capsys=capsys)
    assert code == 0 and "OK : imagerie-médicale, partages, compartiment rempart-lab-offsite" in status, (
        status
    )
    assert "non surveillé" not in status
    assert {"horizon verrou rempart-lab-offsite", "objets masqués rempart-lab-offsite"} <= {
        p["label"] for p in perf
    }

    watch_file(lab, now, hidden=["partages/data/00/0011", "partages/index/aa"])
    code, status, _ = lab.run("offsite", capsys=capsys)
    assert code == 2 and "compartiment rempart-lab-offsite : 2 objet(s) masqué(s)" in status, status

    stale = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(hours=60)
    watch_file(lab, now, refreshed={"partages": stale, "imagerie-médicale": None})
    code, status, _ = lab.run("offsite", capsys=capsys)
    assert code == 2, status
    assert "rétention de partages rafraîchie il y a 2.5 j" in status
    assert "rétention de imagerie-médicale jamais rafraîchie" in status

    soon = dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(days=2)
    watch_file(lab, now, short=[("partages/data/00/0011", soon)])  # locked 2 days ahead, retention 30
    code, status, _ = lab.run("offsite", capsys=capsys)
    assert code == 1 and "1 constat(s) de rempart offsite-watch (verrou plus court" in status, status

    watch_file(lab, now - 60 * HOUR)  # the watch itself stopped running
    code, status, _ = lab.run("offsite", capsys=capsys)
    assert code == 2 and "contrôle du compartiment (rempart offsite-watch) vieux de 2.5 j" in status, status

    watch_file(lab, now)
    assert lab.run("offsite", capsys=capsys)[0] == 0  # recovery
