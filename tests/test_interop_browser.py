"""report.html in a real browser (headless Chromium): no horizontal page scroll at 1280
px, every figure loaded, the table of contents in view at the end of the page, wide
tables scrolling inside their own box, and a click on a heading sorting its column.

The page is the report as written plus a probe script appended to a copy, which writes
what it measured into the DOM that Chromium dumps. Needs Chromium (Debian: apt-get
install chromium); skipped, saying so, where it is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from analysis_data import grid, plus, write_study

from analysis.report import build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium here (Debian: "
                                "apt-get install chromium); the report's layout is unchecked")

PROBE = """<script>
window.addEventListener("load", function () {
  var out = {}, doc = document.documentElement;
  out.page_width = doc.scrollWidth; out.window_width = window.innerWidth;
  var imgs = Array.from(document.images);
  out.images = imgs.length;
  out.images_loaded = imgs.filter(function (i) {
    return i.complete && i.naturalWidth > 0; }).length;
  out.images_fit = imgs.filter(function (i) {
    return i.getBoundingClientRect().right <= window.innerWidth; }).length;
  var boxes = Array.from(document.querySelectorAll(".scroll"));
  out.tables = document.querySelectorAll("table").length;
  out.tables_boxed = document.querySelectorAll(".scroll > table").length;
  out.boxes_scrolling = boxes.filter(function (b) {
    return b.scrollWidth > b.clientWidth; }).length;
  var nav = document.querySelector("nav.toc");
  out.toc_links = nav.querySelectorAll("a").length;
  window.scrollTo(0, doc.scrollHeight);
  out.scrolled = window.scrollY;
  out.toc_top = nav.getBoundingClientRect().top;
  var th = null, table = null;
  document.querySelectorAll("table.sortable").forEach(function (t) {
    if (th) return;
    Array.from(t.tHead.rows[0].cells).forEach(function (h) {
      var vals = Array.from(t.tBodies[0].rows).map(function (r) {
        return r.cells[h.cellIndex].getAttribute("data-v"); });
      var numeric = vals.every(function (v) { return v !== null; }) && new Set(vals).size > 2;
      if (!th && t.tBodies[0].rows.length > 3 && numeric) { th = h; table = t; }
    });
  });
  var column = function () {
    return Array.from(table.tBodies[0].rows).map(function (r) {
      return parseFloat(r.cells[th.cellIndex].getAttribute("data-v")); }); };
  th.click(); out.sorted_up = column();
  th.click(); out.sorted_down = column();
  var pre = document.createElement("pre"); pre.id = "probe";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("results")
    write_study(root, "s", grid("s"), plus(0.01))
    out = tmp_path_factory.mktemp("report")
    html = build_report(["s"], results=str(root), out=str(out), format=["html"])
    probe = html.with_name("probe.html")
    probe.write_text(html.read_text().replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,900", "--virtual-time-budget=20000", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe wrote nothing; chromium said: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_no_horizontal_page_scroll_at_1280_px(page):
    assert page["window_width"] == 1280
    assert page["page_width"] <= page["window_width"]


def test_every_figure_loads_and_fits_the_window(page):
    assert page["images"] >= 4
    assert page["images_loaded"] == page["images"]
    assert page["images_fit"] == page["images"]


def test_wide_tables_scroll_inside_their_own_box(page):
    assert page["tables_boxed"] == page["tables"] >= 10
    assert page["boxes_scrolling"] >= 1  # the claims table is wider than the text column


def test_the_table_of_contents_stays_in_view(page):
    assert page["toc_links"] >= 8
    assert page["scrolled"] > 3000  # a long page, scrolled to its end
    assert 0 <= page["toc_top"] < 5


def test_a_click_on_a_heading_sorts_its_column(page):
    up, down = page["sorted_up"], page["sorted_down"]
    assert up == sorted(up) and down == sorted(down, reverse=True) and up != down
