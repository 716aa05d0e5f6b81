"""Package sources (rempart/model/apt.py): a mirror and a proxy are optional; bad input is refused naming the variable,
the key and the fix, by the model, the `rempart validate` command and the filter roles/base reads them through."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rempart.commands.cli import main
from rempart.model.apt import apt_problems, apt_settings

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"
MIRROR = {"uri": "http://mirror.hopital.local/debian/", "suites": ["bookworm"], "components": ["main"],
          "signed_by": "/usr/share/keyrings/hopital.gpg"}  # fmt: skip


def test_nothing_declared_keeps_the_host_sources():
    assert apt_settings(None, None) == {"mirror": None, "exclusive": False, "proxy": None, "direct": None}


def test_mirror_is_not_exclusive_unless_declared():
    settings = apt_settings(MIRROR, None)
    assert settings["exclusive"] is False and settings["mirror"]["exclusive"] is False
    assert apt_settings({**MIRROR, "exclusive": True}, None)["exclusive"] is True


def test_proxy_alone_and_mirror_reached_directly():
    assert apt_settings(None, "http://proxy.hopital.local:3128")["direct"] is None
    settings = apt_settings(MIRROR, "http://proxy.hopital.local:3128")
    assert settings["proxy"] == "http://proxy.hopital.local:3128"
    assert settings["direct"] == "mirror.hopital.local"


@pytest.mark.parametrize(
    ("mirror", "proxy", "path", "fix"),
    [
        ({**MIRROR, "exclusiv": True}, None, "rempart_apt_mirror.exclusiv", "valid keys: uri, suites"),
        ({**MIRROR, "exclusive": "sometimes"}, None, "rempart_apt_mirror.exclusive", "boolean"),
        ({k: v for k, v in MIRROR.items() if k != "signed_by"}, None, "rempart_apt_mirror", "give signed_by"),
        (
            {**MIRROR, "uri": "mirror.hopital.local"},
            None,
            "rempart_apt_mirror.uri",
            "http://mirror.hopital.local",
        ),
        ({**MIRROR, "suites": []}, None, "rempart_apt_mirror.suites", "at least 1"),
        ({k: v for k, v in MIRROR.items() if k != "uri"}, None, "rempart_apt_mirror.uri", "add 'uri'"),
        (None, "proxy.hopital.local:3128", "rempart_apt_proxy", "http://proxy.hopital.local:3128"),
        (None, "https://proxy.hopital.local:3128", "rempart_apt_proxy", "HTTP proxy"),
        (None, "http://user:secret@proxy:3128", "rempart_apt_proxy", "authorise the hosts"),
        (None, 3128, "rempart_apt_proxy", "got int"),
    ],
)
def test_bad_input_names_the_field_and_the_fix(mirror, proxy, path, fix):
    problems = apt_problems(mirror, proxy)
    assert [p for p, _ in problems] == [path]
    assert fix in problems[0][1]
    with pytest.raises(ValueError, match=path):
        apt_settings(mirror, proxy)


def test_password_never_echoed():
    (_, message), *_ = apt_problems(None, "http://user:s3cret-value@proxy:3128")
    assert "s3cret-value" not in message


def test_validate_command_refuses_a_bad_mirror(tmp_path, capsys):
    inventory = tmp_path / "lab"
    shutil.copytree(LAB, inventory, ignore=shutil.ignore_patterns("vault.yml"))
    assert main(["validate", str(inventory)]) == 0
    lab_vars = inventory / "group_vars" / "all" / "lab.yml"
    document = yaml.safe_load(lab_vars.read_text(encoding="utf-8"))
    document["rempart_apt_mirror"]["exclusive"] = "yes please"
    document["rempart_apt_proxy"] = "proxy:3128"
    lab_vars.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert main(["validate", str(inventory)]) == 1
    out = capsys.readouterr().out
    assert "rempart_apt_mirror.exclusive: Input should be a valid boolean" in out
    assert "rempart_apt_proxy: 'proxy:3128' is not an HTTP proxy address" in out
