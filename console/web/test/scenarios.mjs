// The console's browser tests, written once and run against the fake server (fake.test.mjs) and
// against the real faultline-controller during a sandbox run (real.test.mjs). A backend gives:
//   url, tokens {operator, viewer}, startRun("recovering"|"long") -> Promise,
//   faultsLeft() -> Promise<number> (faults in effect on every host), timeoutMs,
//   policy {operatorToken, outside, inside} (experiment YAML texts) or null.
import assert from "node:assert/strict";
import { signedIn } from "./browser.mjs";
import { decodePng } from "./png.mjs";

// Colour classes of the rendered pixels (the report's palette, antialiased edges excluded).
const isGreen = ([r, g, b]) => g > r + 50 && g > b + 30;
const isRed = ([r, g, b]) => r > g + 80 && r > b + 80;
const isOrange = ([r, g, b]) => r > 180 && g > 60 && g < 170 && b < 80;

async function samplesShown(page) {
  return Number((await page.locator("#samples").textContent()) ?? "0");
}

// Waits for `predicate()` (async) to hold, checking again after each of the page's updates.
export async function until(predicate, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// During a run the live view gains samples and the recover marker appears; then the screenshot of
// the finished timeline is checked by its pixels at the geometry of the rendered elements.
export async function liveViewGainsSamplesAndRecoverMarker(browser, b) {
  const page = await signedIn(browser, b.url, b.tokens.viewer);
  const started = b.startRun("recovering");
  await page.locator("#samples").waitFor({ timeout: b.timeoutMs });
  await until(async () => (await samplesShown(page)) > 0, "the first sample", b.timeoutMs);
  const first = await samplesShown(page);
  const firstMarks = await page.locator("#live-timeline rect.sample").count();
  await until(async () => (await samplesShown(page)) > first, "more samples", b.timeoutMs);
  assert.ok((await page.locator("#live-timeline svg#timeline").count()) === 1, "the server's timeline SVG is in the page");
  await page.locator("#live-timeline g.marker.recover").waitFor({ timeout: b.timeoutMs });
  assert.match(await page.locator("#recover-marker").textContent(), /recover at \+\d+\.\d+ s, truth in \[\d+\.\d+ s, \d+\.\d+ s\]/);
  assert.match(await page.locator("#detect-marker").textContent(), /detect at \+/);
  // The run's end: the picture stops changing, so geometry and pixels are of one SVG.
  await page.locator(".run-head .badge.pass, .run-head .badge.fail").waitFor({ timeout: b.timeoutMs });
  await started;
  assert.ok((await page.locator("#live-timeline rect.sample").count()) >= Math.max(1, firstMarks));
  await checkTimelinePixels(page);
  assert.deepEqual(page.problems, [], "no console error and no CSP violation");
  await page.context().close();
}

export async function checkTimelinePixels(page) {
  const svg = page.locator("#live-timeline svg");
  const geo = await svg.evaluate((el) => {
    const o = el.getBoundingClientRect();
    const rel = (e) => {
      if (!e) return null;
      const r = e.getBoundingClientRect();
      return { x: r.x - o.x, y: r.y - o.y, w: r.width, h: r.height };
    };
    return {
      width: o.width,
      height: o.height,
      recover: rel(el.querySelector("g.marker.recover line")),
      detect: rel(el.querySelector("g.marker.detect line")),
      markerLines: el.querySelectorAll("g.marker line").length,
      markerBoxes: Array.from(el.querySelectorAll("g.marker line")).map(rel),
      // The first probe's lane (a run may have several).
      samples: Array.from(el.querySelector("g.probe")?.querySelectorAll("rect.sample") ?? []).map((e) => ({ ...rel(e), ok: e.classList.contains("ok") })),
    };
  });
  const png = decodePng(await svg.screenshot());
  assert.ok(Math.abs(png.width - Math.round(geo.width)) <= 1, `screenshot ${png.width} px wide, SVG ${geo.width}`);
  // A marker's line: rows of its box where some pixel has the marker's colour.
  const rowsWith = (box, test) => {
    let rows = 0;
    for (let y = Math.ceil(box.y); y < Math.floor(box.y + box.h) && y < png.height; y++) {
      for (let x = Math.floor(box.x) - 1; x <= Math.ceil(box.x + box.w) + 1; x++) {
        if (x >= 0 && x < png.width && test(png.rgba(x, y))) {
          rows++;
          break;
        }
      }
    }
    return rows;
  };
  assert.ok(geo.recover && geo.recover.h > 20, "the recover marker's line has a height");
  const green = rowsWith(geo.recover, isGreen);
  assert.ok(green >= geo.recover.h * 0.6, `recover marker: green in ${green} of ${Math.round(geo.recover.h)} rows of its box`);
  assert.ok(geo.detect, "the detect marker is drawn");
  // Negative control: the detect marker's box holds its orange, not the recover marker's green.
  const orange = rowsWith(geo.detect, isOrange);
  assert.ok(orange >= geo.detect.h * 0.6, `detect marker: orange in ${orange} of ${Math.round(geo.detect.h)} rows`);
  if (Math.abs(geo.detect.x - geo.recover.x) > 4) {
    const greenAtDetect = rowsWith({ ...geo.detect, x: geo.detect.x + 0.5, w: 0 }, isGreen);
    assert.ok(greenAtDetect < geo.detect.h * 0.2, `detect marker's line is not green (${greenAtDetect} rows)`);
  }

  // The sample strip: along its middle row, the runs of green (ok) and red (failed) pixels are the
  // sample marks the SVG holds (marks narrower than 3 px are below what a row of pixels resolves).
  assert.ok(geo.samples.length > 0, "sample marks drawn");
  const expected = [];
  for (const s of geo.samples) {
    if (s.w < 3) continue;
    if (expected.length && expected[expected.length - 1] === s.ok) continue;
    expected.push(s.ok);
  }
  const y = Math.round(geo.samples[0].y + geo.samples[0].h / 2);
  const x0 = Math.max(0, Math.floor(Math.min(...geo.samples.map((s) => s.x))));
  const x1 = Math.min(png.width - 1, Math.ceil(Math.max(...geo.samples.map((s) => s.x + s.w))));
  const seen = [];
  let redPixels = 0;
  // A marker's line crossing the strip has the marker's colour (the recover marker's green reads
  // as ok, the detect marker's orange as failed): its columns are not the strip's.
  const underMarker = (x) => geo.markerBoxes.some((m) => m && x >= Math.floor(m.x) - 2 && x <= Math.ceil(m.x + m.w) + 2);
  for (let x = x0; x <= x1; x++) {
    if (underMarker(x)) continue;
    const p = png.rgba(x, y);
    const cls = isGreen(p) ? true : isRed(p) ? false : null;
    if (cls === false) redPixels++;
    if (cls === null) continue; // an edge, or a marker's line crossing the strip
    if (seen.length && seen[seen.length - 1].ok === cls) seen[seen.length - 1].n++;
    else seen.push({ ok: cls, n: 1, x });
  }
  const runs = seen.filter((r) => r.n >= 2).reduce((acc, r) => (acc.length && acc[acc.length - 1] === r.ok ? acc : [...acc, r.ok]), []);
  const where = () =>
    ` (pixel runs ${JSON.stringify(seen)}; marks ${JSON.stringify(geo.samples.map((s) => [Math.round(s.x * 10) / 10, Math.round(s.w * 10) / 10, s.ok]))}; marker lines ${JSON.stringify(geo.markerBoxes)})`;
  assert.deepEqual(runs, expected, `sample strip pixels ${JSON.stringify(runs)} vs marks ${JSON.stringify(expected)}${where()}`);
  assert.ok(runs.includes(false) && runs.includes(true), "the strip shows failed and ok samples");
  const failedWidth = geo.samples.filter((s) => !s.ok).reduce((n, s) => n + s.w, 0);
  // Edges blend (up to 2 px per mark) and marker lines cross the strip (up to 3 px each).
  const slack = 2 + 2 * geo.samples.length + 3 * geo.markerLines;
  assert.ok(Math.abs(redPixels - failedWidth) <= slack, `red pixels ${redPixels} vs failed marks ${failedWidth.toFixed(1)} px`);
}

async function haltState(page) {
  return page.evaluate(async () => (await (await fetch("/api/halt")).json()).halted);
}

// A viewer cannot stop and sees the server's refusal; an operator stops the run from the keyboard
// (ABORTED, no fault left on any host), every viewer sees the halt at once, and Resume lifts it.
export async function viewerRefusedThenOperatorStops(t, browser, b) {
  const viewer = await signedIn(browser, b.url, b.tokens.viewer);
  const operator = await signedIn(browser, b.url, b.tokens.operator);
  const started = b.startRun("long");
  for (const p of [viewer, operator]) await p.locator('.phases li.current[data-phase="fault"]').waitFor({ timeout: b.timeoutMs });
  await until(async () => (await b.faultsLeft()) > 0, "the run's fault in effect on a host", b.timeoutMs);

  await t.test("a viewer cannot stop, and gets a clear refusal", async () => {
    await viewer.locator("#stop").click();
    await viewer.locator("#halt-dialog[open]").waitFor();
    await viewer.locator("#confirm-halt").click();
    await until(async () => /Refused/.test((await viewer.locator("#halt-error").textContent()) ?? ""), "the refusal", b.timeoutMs);
    const text = await viewer.locator("#halt-error").textContent();
    assert.match(text, /^Refused \(403\): .*viewer/, "the server's refusal, naming the role");
    assert.equal(await viewer.locator("#halt-error").getAttribute("role"), "alert");
    await viewer.locator("#cancel-halt").click();
    assert.equal(await viewer.locator("#halted-state").count(), 0, "no halted banner");
    assert.equal(await haltState(viewer), false, "the fleet is not halted");
    const n = await samplesShown(viewer);
    await until(async () => (await samplesShown(viewer)) > n, "the run going on after the refusal", b.timeoutMs);
    assert.ok((await b.faultsLeft()) > 0, "the fault is still in effect");
  });

  await t.test("the stop button halts the run: keyboard, confirmation, ABORTED, no fault left", async () => {
    // Tab to the button: it is focusable and shows a focus ring.
    let focused = "";
    for (let i = 0; i < 40 && focused !== "stop"; i++) {
      await operator.keyboard.press("Tab");
      focused = await operator.evaluate(() => document.activeElement?.id ?? "");
    }
    assert.equal(focused, "stop", "Tab reaches the stop button");
    const ring = await operator.evaluate(() => {
      const s = getComputedStyle(document.activeElement);
      return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    });
    assert.ok(ring.style !== "none" && ring.width >= 3, `visible focus ring: ${JSON.stringify(ring)}`);
    await operator.keyboard.press("Enter");
    await operator.locator("#halt-dialog[open]").waitFor();
    assert.equal(await operator.evaluate(() => document.activeElement?.id), "confirm-halt");
    const clicked = Date.now();
    await operator.keyboard.press("Space");
    for (const p of [operator, viewer]) {
      await p.locator("#halted-state").waitFor({ timeout: b.timeoutMs });
      assert.match(await p.locator("#halt-banner").textContent(), /FLEET HALTED by/);
      await p.locator(".run-head .badge.aborted").waitFor({ timeout: b.timeoutMs });
    }
    const banner = Date.now() - clicked;
    await until(async () => (await b.faultsLeft()) === 0, "no fault left on any host", b.timeoutMs);
    console.log(`# stop: confirm key to the halted banner on both pages ${banner} ms`);
    assert.equal(await haltState(viewer), true);
    if (b.policy) {
      // Latched: no run starts until someone resumes.
      await startFromPage(operator, b.policy.inside);
      assert.match(await operator.locator("#start-result").textContent(), /^Refused \(409\)/);
    }
    await operator.locator("#resume").click();
    for (const p of [operator, viewer]) await p.locator("#halted-state").waitFor({ state: "detached", timeout: b.timeoutMs });
    assert.equal(await haltState(viewer), false);
  });
  await started;
  assert.deepEqual([...viewer.problems, ...operator.problems], [], "no console error and no CSP violation");
  await viewer.context().close();
  await operator.context().close();
}

async function startFromPage(page, yaml) {
  const details = page.locator("details.start-run");
  if (!(await details.evaluate((d) => d.open))) await page.locator("details.start-run summary").click();
  await page.locator("#experiment-yaml").fill(yaml);
  await page.locator("#start-result").evaluate((e) => (e.textContent = ""));
  await page.locator("#start-run").click();
  await until(async () => /^(Started|Refused|Failed|\d)/.test((await page.locator("#start-result").textContent()) ?? ""), "the start's answer", 30000);
}

// A request to the console's API from the page (its session cookie), as the page sends it.
async function api(page, method, path, body) {
  return page.evaluate(
    async ([method, path, body]) => {
      const init = { method, headers: method === "GET" ? {} : { "X-Faultline-Console": "1", "Content-Type": "application/json" } };
      if (method !== "GET") init.body = JSON.stringify(body ?? {});
      const res = await fetch(path, init);
      return { status: res.status, json: await res.json().catch(() => null) };
    },
    [method, path, body],
  );
}

// A team cannot target agents outside its policy: an operator of team orders submits a run aimed at
// role=db from the page, sees the controller's refusal naming the rule, and nothing is applied (no
// run starts, no fault on any host). The control: a run inside the policy starts and its fault takes
// effect; it is then halted (no fault left) and the fleet resumed.
export async function teamPolicyRefusesOutsideTargets(browser, b) {
  const page = await signedIn(browser, b.url, b.policy.operatorToken);
  const active = async () => (await api(page, "GET", "/api/runs/active")).json.length;
  const activeBefore = await active();
  const faultsBefore = await b.faultsLeft();
  await startFromPage(page, b.policy.outside);
  const refused = await page.locator("#start-result").textContent();
  assert.match(refused, /^Refused \(403\): team policy .*\(teams\.orders\.targets\).*\{role: db\}.*may target: \{role: app\}/, `refusal shown: ${refused}`);
  assert.equal(await page.locator("#start-result").getAttribute("class"), "error");
  assert.equal(await page.locator("#start-result").getAttribute("role"), "status");
  assert.equal(await active(), activeBefore, "the refused run did not start");
  assert.equal(await b.faultsLeft(), faultsBefore, "the refused run applied nothing");

  await startFromPage(page, b.policy.inside);
  const started = await page.locator("#start-result").textContent();
  const id = /^Started run (\S+)/.exec(started)?.[1];
  assert.ok(id, `the allowed run starts: ${started}`);
  await page.locator(".run-head").waitFor({ timeout: b.timeoutMs });
  await until(async () => (await b.faultsLeft()) > faultsBefore, "the allowed run's fault in effect", b.timeoutMs);
  const halted = await api(page, "POST", "/api/halt", { reason: "policy test done" });
  assert.equal(halted.status, 200, JSON.stringify(halted.json));
  await until(async () => (await b.faultsLeft()) === 0, "no fault left after the halt", b.timeoutMs);
  assert.equal((await api(page, "POST", "/api/resume", {})).status, 200);
  assert.deepEqual(page.problems, [], "no console error and no CSP violation");
  await page.context().close();
}
