"""Audit the installed dependencies for known vulnerabilities with pip-audit (``make audit``, run by ``.ci/run``).

Runs ``pip-audit --local --skip-editable`` over the virtual environment it is started from (the project itself,
an editable install, is not audited), with the advisories of ``.ci/pip-audit-ignore.txt`` ignored, and reads its
JSON report:

- any known vulnerability that is not ignored fails the audit (exit 1), listing package, version, advisory id,
  aliases and the versions that fix it;
- when the vulnerability service could not be asked about a package, that package is named as unaudited; when it
  could be asked about none (the service is unreachable from this machine: pip-audit then says "No known
  vulnerabilities found" and exits 0, which would be a false pass), the audit says so loudly and exits 0, or 3
  with ``--strict``. So CI fails on a reachable service reporting a vulnerability, and is not blocked by a
  network that cannot reach it; the unaudited count is in the log either way.

Severity policy: pip-audit's default service (PyPI's JSON API, ``pypi.org/pypi/<name>/<version>/json``) reports
advisories without a severity, and the service that has severities (OSV, ``api.osv.dev``) may be unreachable. So
every known advisory is treated as critical: the audit fails on any, and one is accepted only by listing it in
``.ci/pip-audit-ignore.txt`` with the reason (``ID  reason``, one a line). ``--service osv`` asks OSV instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IGNORE_FILE = HERE / "pip-audit-ignore.txt"
UNREACHABLE = 3
NETWORK_ERRORS = ("ConnectionError", "ConnectTimeout", "ReadTimeout", "NameResolutionError", "Max retries exceeded",
                  "Temporary failure in name resolution", "Network is unreachable")  # fmt: skip


def ignored(path: Path = IGNORE_FILE) -> dict[str, str]:
    """Advisory id -> reason, from ``path`` (``ID  reason`` lines; ``#`` comments). An entry without a reason is an
    error: every accepted advisory must say why."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        vuln, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path}:{n}: {vuln} has no reason; write 'ID  why it does not apply'")
        out[vuln] = reason.strip()
    return out


def run_pip_audit(service: str, ignore: dict[str, str], report: Path) -> tuple[int, str]:
    """Run pip-audit over this interpreter's environment, writing its JSON report to ``report``."""
    cmd = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--local", "--skip-editable", "--desc",
           "off", "--vulnerability-service", service, "--format", "json", "--output", str(report)]  # fmt: skip
    for vuln in ignore:
        cmd += ["--ignore-vuln", vuln]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return done.returncode, done.stderr


def judge(data: dict, ignore: dict[str, str]) -> tuple[int, list[str]]:  # type: ignore[type-arg]
    """The exit code and the lines to print for a pip-audit JSON report (see the module docstring)."""
    deps = data.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d and "editable" not in d["skip_reason"]]
    audited = [d for d in deps if "skip_reason" not in d]
    lines: list[str] = []
    found = []
    for dep in audited:
        for vuln in dep.get("vulns", []):
            if vuln["id"] in ignore:
                lines.append(f"ignored {vuln['id']} in {dep['name']} {dep['version']}: {ignore[vuln['id']]}")
                continue
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            found.append(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']}"
                         + (f" ({aliases})" if aliases else "") + f"; fixed in: {fixes}")  # fmt: skip
    lines += found
    if skipped:
        names = ", ".join(f"{d['name']}" for d in skipped[:12]) + (" ..." if len(skipped) > 12 else "")
        total = len(skipped) + len(audited)
        lines.append(f"unaudited: the vulnerability service could not be asked about {len(skipped)} of {total} "
                     f"packages ({names}); first reason: {skipped[0]['skip_reason']}")  # fmt: skip
    if found:
        lines.append(f"dependency audit FAILED: {len(found)} known vulnerabilities in {len(audited)} audited packages")
        return 1, lines
    if not audited and skipped:
        lines.append("dependency audit NOT DONE: the vulnerability service answered for no package (unreachable "
                     "from this machine?); nothing is known to be vulnerable, and nothing was checked")  # fmt: skip
        return UNREACHABLE, lines
    lines.append(f"dependency audit passed: {len(audited)} packages, no known vulnerability")
    return 0, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="pip-audit's vulnerability service")
    parser.add_argument("--report", type=Path, help="judge this pip-audit JSON report instead of running pip-audit")
    parser.add_argument("--strict", action="store_true", help=f"exit {UNREACHABLE} when the service is unreachable")
    args = parser.parse_args(argv)
    ignore = ignored()
    if args.report is not None:
        data = json.loads(args.report.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "pip-audit.json"
            code, stderr = run_pip_audit(args.service, ignore, report)
            if not report.exists():
                print(stderr.strip(), file=sys.stderr)
                if any(e in stderr for e in NETWORK_ERRORS):
                    print(f"dependency audit NOT DONE: the {args.service} vulnerability service is unreachable")
                    return UNREACHABLE if args.strict else 0
                print(f"dependency audit FAILED: pip-audit exited {code} without a report")
                return 1
            data = json.loads(report.read_text())
    code, lines = judge(data, ignore)
    print("\n".join(lines))
    return 0 if code == UNREACHABLE and not args.strict else code


if __name__ == "__main__":
    sys.exit(main())
