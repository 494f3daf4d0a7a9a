"""The dependency audit's verdicts (``.ci/audit_deps.py``) on pip-audit JSON reports: a vulnerability fails it, an
ignored one (with its reason) does not, an unreachable service is reported as not done (failing only with
``--strict``), and an ignore entry without a reason is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit_deps.py"
VULN = {"id": "PYSEC-2099-1", "fix_versions": ["2.0.1"], "aliases": ["CVE-2099-0001"], "description": ""}


def verdict(tmp_path: Path, deps: list[dict[str, Any]], *args: str) -> subprocess.CompletedProcess[str]:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"dependencies": deps, "fixes": []}))
    return subprocess.run([sys.executable, str(SCRIPT), "--report", str(report), *args], capture_output=True,
                          text=True, check=False, timeout=60)  # fmt: skip


def test_a_known_vulnerability_fails_the_audit(tmp_path: Path) -> None:
    done = verdict(tmp_path, [{"name": "jinja2", "version": "2.0", "vulns": [VULN]},
                              {"name": "numpy", "version": "2.1", "vulns": []},
                              {"name": "branchnet", "skip_reason": "distribution marked as editable"}])  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "VULNERABLE jinja2 2.0: PYSEC-2099-1 (CVE-2099-0001); fixed in: 2.0.1" in done.stdout
    assert "1 known vulnerabilities in 2 audited packages" in done.stdout and "unaudited" not in done.stdout


def test_a_clean_report_passes_and_names_unaudited_packages(tmp_path: Path) -> None:
    done = verdict(tmp_path, [{"name": "numpy", "version": "2.1", "vulns": []},
                              {"name": "odd", "skip_reason": "Dependency not found on PyPI: odd (0.1)"}])  # fmt: skip
    assert done.returncode == 0 and "passed: 1 packages" in done.stdout
    assert "could not be asked about 1 of 2 packages (odd)" in done.stdout


def test_an_unreachable_service_is_not_a_pass(tmp_path: Path) -> None:
    deps = [{"name": n, "skip_reason": f"Dependency not found on PyPI and could not be audited: {n} (1.0)"}
            for n in ("numpy", "fastapi")]  # fmt: skip
    done = verdict(tmp_path, deps)
    assert done.returncode == 0 and "dependency audit NOT DONE" in done.stdout and "passed" not in done.stdout
    assert verdict(tmp_path, deps, "--strict").returncode == 3


def test_ignored_advisories_need_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import audit_deps
    finally:
        sys.path.remove(str(SCRIPT.parent))
    good = tmp_path / "ignore.txt"
    good.write_text("# comment\nPYSEC-2099-1  only the CLI's optional notebook extra uses it\n")
    accepted = audit_deps.ignored(good)
    assert accepted == {"PYSEC-2099-1": "only the CLI's optional notebook extra uses it"}
    code, lines = audit_deps.judge({"dependencies": [{"name": "jinja2", "version": "2.0", "vulns": [VULN]}]}, accepted)
    assert code == 0 and lines[0].startswith("ignored PYSEC-2099-1 in jinja2 2.0: only the CLI's")
    bad = tmp_path / "bad.txt"
    bad.write_text("PYSEC-2099-1\n")
    with pytest.raises(SystemExit, match=r"bad\.txt:1: PYSEC-2099-1 has no reason"):
        audit_deps.ignored(bad)
    assert audit_deps.ignored(audit_deps.IGNORE_FILE) == {}  # the committed list: nothing accepted today
