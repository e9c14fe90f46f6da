"""The rendered report (Markdown and self-contained HTML) on a study of known answers."""

import base64
import re
from html.parser import HTMLParser

import pytest
from analysis_data import grid, plus, write_study

from analysis.report import build_report
from study.cell import Cell
from study.cli import main

SECTIONS = ("## Answer", "## Claims", "## Trials", "## Stability",
            "## Convergence (a description of the grid)", "## Metric deltas against mse",
            "### Trials without a pair", "## AUROC per epoch", "## Best-of tuning",
            "## Paper-format tables", "### LMSE Tables I/II", "### IAEAD Table 2",
            "## Provenance")
FIGURES = ("forest.png", "paired_auroc.png", "seed_stability.png", "loss_bands.png",
           "auroc_deltas.png", "auroc_per_epoch.png")
CLAIM_COLUMNS = ["claim", "verdict", "effect", "95% CI", "margin", "unit", "n units", "n pairs",
                 "estimand", "test"]


class Page(HTMLParser):
    """Collects images, tables (as lists of rows of cell texts) and verdict cells."""

    def __init__(self):
        super().__init__()
        self.images, self.tables, self.links, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif (tag == "link" or (tag == "script" and attrs.get("src"))  # inline JS: in the file
              or (tag == "a" and not attrs["href"].startswith("#"))):
            self.links.append(attrs)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    cells = grid("s") + [Cell(study="s", loss="lmse", normal_class=3, lr=0.01, epochs=6)]
    write_study(root, "s", cells, plus(0.01),
                status=lambda c: "diverged" if c.lr == 0.01 else "complete")
    out = tmp_path_factory.mktemp("report")
    return build_report(["s"], results=str(root), out=str(out)), root


def test_markdown_has_every_section_in_order_with_its_figures(report):
    path, _ = report
    text = path.read_text()
    places = [re.search(f"^{re.escape(heading)}", text, re.M).start() for heading in SECTIONS]
    assert places == sorted(places)  # the answer first, provenance last
    assert re.findall(r"^## .*", text, re.M)[0] == "## Answer"
    assert re.findall(r"^## .*", text, re.M)[-1] == "## Provenance"
    for name in FIGURES:
        assert f"]({name})" in text and (path.parent / name).stat().st_size > 5000
    assert "| lmse | 20 | 2 | normal_class | 10 |" in text  # value, pairs, seeds, over, n
    assert "| lmse | diverged | trial diverged | 1 |" in text  # the unpaired trial, reported


def test_the_first_screen_is_the_answer_and_the_forest_plot(report):
    path, _ = report
    text = path.read_text()
    answer = re.search(r"## Answer\n\n(.*?)\n\n(.*?)\n", text, re.S)
    assert answer.group(1).startswith("**lmse vs mse on digits**: +1.00 AUROC points [+1.00, "
                                      "+1.00] over 10 classes (20 pairs); **better** within "
                                      "±0.5 points")
    assert answer.group(2).startswith("![") and answer.group(2).endswith("(forest.png)")


def test_the_claims_table_names_unit_margin_counts_estimand_and_test(report):
    path, _ = report
    claims = re.search(r"## Claims\n(.*?)\n## ", path.read_text(), re.S).group(1)
    header = next(line for line in claims.splitlines() if line.startswith("| claim |"))
    assert [c.strip() for c in header.strip("|").split("|")][:10] == CLAIM_COLUMNS
    assert ("| lmse detects anomalies better than mse on digits (AUROC) | better | Δ points "
            "+1.00 | [+1.00, +1.00] | ±0.5 points | dataset × normal_class | 10 | 20 |") in claims
    assert "`adstudy sql claims --results" in claims


def test_html_is_self_contained_with_tables_and_embedded_images(report):
    path, _ = report
    page = Page()
    page.feed(path.with_suffix(".html").read_text())
    assert len(page.images) == len(FIGURES) and not page.links
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert len(page.tables) >= 15 and all(len(t) >= 2 for t in page.tables[:3])
    claims = next(t for t in page.tables if t[0][:2] == ["claim", "verdict"])
    assert ["lmse detects anomalies better than mse on digits (AUROC)", "better"] in [
        row[:2] for row in claims]


def test_report_command_writes_the_chosen_formats(report, tmp_path, capsys):
    _, root = report
    assert main(["report", "s", "--results", str(root), "--out", str(tmp_path),
                 "--format", "html"]) == 0
    assert (tmp_path / "s" / "report.html").exists()
    assert not (tmp_path / "s" / "report.md").exists()
    assert "report.html" in capsys.readouterr().out
    assert main(["report", "s", "--results", str(root), "--format", "pdf"]) == 2
    assert "unknown report format ['pdf']; choose from ['md', 'html']" in capsys.readouterr().err


def test_a_report_without_the_baseline_says_so(report, tmp_path):
    _, root = report
    text = build_report(["s"], results=str(root), out=str(tmp_path), baseline="l1").read_text()
    assert "No trials at baseline loss `l1`; values here: ['lmse', 'mse']" in text
    assert "## Convergence (a description of the grid)" in text  # what needs no baseline
