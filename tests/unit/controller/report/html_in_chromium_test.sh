#!/usr/bin/env bash
# The HTML report as a person sees it: headless Chromium renders `faultline report --format html`
# of a saved report (a real run of the flagship with failover off: FAIL) and of the same report
# with hostile names in it. A harness page frames each report and measures the rendered layout
# (SVG size, failure marks, fault windows, markers with non-zero boxes, the verdict banner's text,
# no script or img element created by a name). Needs no root, no sandbox, no network.
# Usage: html_in_chromium_test.sh BIN_DIR SOURCE_DIR
set -euo pipefail
BIN="$1"
SRC="$2"
FIXTURE="$SRC/tests/unit/controller/report/testdata/flagship-fail.report.json"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v chromium >/dev/null || fail "chromium is not installed (scripts/lib.sh installs it)"

WORK=$(mktemp -d /tmp/faultline-html-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$BIN/faultline" report "$FIXTURE" --format html --out "$WORK/report.html"
# Hostile strings where a user's experiment file or an agent could put them.
jq '.experiment = "<script>document.title=\"pwned\"</script>x"
    | .probes[0].name = "\"><img src=x onerror=alert(1)>"
    | .objectives[0].name = "<b>bold</b>"
    | .faults[0].agents[0].agent = "</svg><script>alert(2)</script>"
    | .annotations = [{"t_s": 8.0, "author": "<i>ana</i>", "text": "</title><script>alert(3)</script>"}]' \
  "$FIXTURE" >"$WORK/hostile.json"
"$BIN/faultline" report "$WORK/hostile.json" --format html --out "$WORK/hostile.html"

cat >"$WORK/harness.html" <<'HTML'
<!DOCTYPE html><html><body>
<iframe id="real" src="report.html" style="width:1200px;height:2000px"></iframe>
<iframe id="hostile" src="hostile.html" style="width:1200px;height:2000px"></iframe>
<pre id="result">pending</pre>
<script>
function measure(d) {
  const shown = e => { const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
  const all = sel => [...d.querySelectorAll(sel)];
  const svg = d.getElementById('timeline');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const banner = d.getElementById('verdict');
  const line = d.querySelector('polyline.latency');
  return {
    svg_width: Math.round(box.width), svg_height: Math.round(box.height),
    failed_marks: all('rect.sample.failed').filter(shown).length,
    ok_marks: all('rect.sample.ok').filter(shown).length,
    fault_bars: all('rect.fault-bar').filter(shown).length,
    fault_windows: all('rect.fault-window').filter(shown).length,
    markers: all('g.marker').filter(shown).map(g => g.getAttribute('class')),
    target_labels: all('g.marker.target text').map(t => t.textContent),
    note_titles: all('g.marker.note title').map(t => t.textContent),
    latency_points: line ? line.points.numberOfItems : 0,
    verdict: banner ? banner.innerText : '',
    banner_color: banner ? getComputedStyle(banner).backgroundColor : '',
    title: d.title,
    h1: d.querySelector('h1') ? d.querySelector('h1').textContent : '',
    scripts: all('script').length, imgs: all('img').length, bolds_in_svg: all('svg b').length,
    evidence_rows: all('#evidence tr').length - 1,
  };
}
let pending = 2; const out = {};
for (const id of ['real', 'hostile']) {
  const f = document.getElementById(id);
  const done = () => {
    out[id] = measure(f.contentDocument);
    if (--pending === 0) {
      document.getElementById('result').textContent =
        'RESULT ' + btoa(unescape(encodeURIComponent(JSON.stringify(out))));
    }
  };
  if (f.contentDocument && f.contentDocument.readyState === 'complete' &&
      f.contentDocument.getElementById('verdict')) done(); else f.addEventListener('load', done);
}
</script></body></html>
HTML

chromium_args=(--headless --no-sandbox --disable-gpu --user-data-dir="$WORK/profile"
  --no-first-run --no-default-browser-check --disable-background-networking --disable-sync
  --disable-extensions --disable-component-update --allow-file-access-from-files
  --virtual-time-budget=10000)
timeout 60 chromium "${chromium_args[@]}" --dump-dom "file://$WORK/harness.html" \
  >"$WORK/dom.html" 2>"$WORK/chromium.log" || { cat "$WORK/chromium.log" >&2; fail "chromium failed"; }
encoded=$(sed -n 's/.*RESULT \([A-Za-z0-9+\/=]*\).*/\1/p' "$WORK/dom.html")
[ -n "$encoded" ] || { cat "$WORK/chromium.log" >&2; fail "the harness produced no result"; }
R=$(base64 -d <<<"$encoded")
echo "$R" | jq .

check() { jq -e "$1" <<<"$R" >/dev/null || fail "$2"; }
# The real report: a FAIL run where the orders service never recovered while the fault held.
check '.real.svg_width > 800 and .real.svg_height > 200' "the timeline is not drawn at a usable size"
check '.real.verdict | startswith("FAIL")' "the verdict banner does not say FAIL"
check '.real.banner_color == "rgb(198, 40, 40)"' "the FAIL banner is not red"
check '.real.failed_marks >= 1 and .real.ok_marks >= 1' "no success and failure marks on the probe lane"
check '.real.fault_bars == 1 and .real.fault_windows == 1' "the fault window is not shaded"
check '.real.latency_points > 50' "the latency line has too few points"
check '[.real.markers[] | select(startswith("marker inject"))] | length == 1' "no fault-in-effect marker"
check '[.real.markers[] | select(startswith("marker revert"))] | length == 1' "no revert marker"
check '[.real.markers[] | select(startswith("marker detect"))] | length >= 1' "no detect marker"
check '[.real.target_labels[] | select(test("automated-failover target .* FAIL"))] | length == 1' \
  "the missed objective's target line is not labelled FAIL"
check '.real.evidence_rows == 1' "the evidence table lacks the fault"
check '.real.scripts == 0' "the report contains a script"
# The hostile report: every name is text, none became an element.
check '.hostile.scripts == 0 and .hostile.imgs == 0 and .hostile.bolds_in_svg == 0' \
  "a name in the report became markup"
check '.hostile.title != "pwned" and (.hostile.title | startswith("FAIL · <script>"))' \
  "a script from the experiment name ran, or the name is not the page title's text"
check '.hostile.h1 == "<script>document.title=\"pwned\"</script>x"' "the experiment name is not shown as text"
check '.hostile.note_titles == ["<i>ana</i>: </title><script>alert(3)</script>"]' \
  "the annotation is not shown as text on the timeline"
check '.hostile.svg_width > 800' "the hostile report's timeline is not drawn"
echo "PASS: the HTML report renders in Chromium (timeline, markers, verdict) and escapes names"
