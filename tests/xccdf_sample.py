"""A small XCCDF 1.2 result as `oscap xccdf eval --profile anssi_bp28_enhanced` writes it (ssg-debian 0.1.76)."""

from __future__ import annotations

RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"


def xccdf_result(results: dict[str, str]) -> str:
    """``results``: rule name (without the ComplianceAsCode prefix) → pass, fail, notapplicable, notchecked..."""
    rows = "".join(
        f'  <rule-result idref="{RULE_PREFIX}{rule}"><result>{result}</result></rule-result>\n'
        for rule, result in results.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Benchmark xmlns="http://checklists.nist.gov/xccdf/1.2" id="xccdf_org.ssgproject.content_benchmark_DEBIAN-12">\n'
        ' <TestResult id="xccdf_org.open-scap_testresult_anssi_bp28_enhanced">\n'
        f"{rows} </TestResult>\n</Benchmark>\n"
    )
