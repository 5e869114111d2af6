// A small stand-in for faultline-controller's console (docs/console-api.md), for developing and
// testing the page without a controller: the same paths, JSON, headers, roles and refusals, with
// an in-memory fleet and a simulated run driven by the fake's own clock (one probe sample per
// tick). The real server is tested by tests/console/console_live_test.sh.
//
// startFakeConsole({dist, tickMs}) -> {url, close(), startRun(opts), endRunWhileDisconnected(id),
// activeFaults(), state}
// Tokens: "operator-token" (alice, operator, team orders), "viewer-token" (victor, viewer, team
// orders). Team orders may target role=app only.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join } from "node:path";

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};
const TOKENS = {
  "operator-token": { identity: "alice", role: "operator", team: "orders", source: "token" },
  "viewer-token": { identity: "victor", role: "viewer", team: "orders", source: "token" },
};
const POLICY = { orders: { role: ["app"] } };

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// The timeline in the shape of controller/report/html_report.cpp's (same classes, same layout
// rules that the page's CSS and the tests rely on), reduced to one probe lane.
function timelineSvg(run) {
  const W = 1100, L = 190, R = 40, plot = W - L - R;
  const span = Math.max(10, Math.ceil((run.samples.length * run.interval + 1) / 5) * 5);
  const X = (t) => L + (Math.min(Math.max(t, 0), span) / span) * plot;
  const top = 40, laneTop = top + 24, stripY = laneTop + 94, bottom = stripY + 12 + 10;
  let out = `<svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox="0 0 ${W} ${bottom + 42}" width="${W}" height="${bottom + 42}" role="img" aria-label="timeline of run ${esc(run.state.run_id)}">\n`;
  for (const f of run.state.faults) {
    const x0 = X(f.start_s), x1 = X(f.end_s ?? span);
    out += `<g class="shading"><rect class="fault-window" x="${x0.toFixed(1)}" y="${laneTop}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${bottom - laneTop}" fill="#f4a261"/></g>\n`;
    out += `<text class="lane" x="${L - 8}" y="${top + 13}">${esc(f.target)} @ ${esc(f.host)}</text><rect class="fault-bar${f.end_s === null ? " open" : ""}" x="${x0.toFixed(1)}" y="${top + 2}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="14" fill="#f4a261"/>\n`;
  }
  out += `<g class="probe" data-probe="orders-api"><text class="lane" x="${L - 48}" y="${laneTop + 12}">orders-api</text>\n`;
  // Consecutive samples of one outcome merged into one mark, as the report does.
  const s = run.samples;
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j < s.length && s[j].ok === s[i].ok) j++;
    const t0 = s[i].t, t1 = j < s.length ? s[j].t : s[j - 1].t + run.interval;
    out += `<rect class="sample ${s[i].ok ? "ok" : "failed"}" x="${X(t0).toFixed(1)}" y="${stripY}" width="${Math.max(1, X(t1) - X(t0)).toFixed(1)}" height="12"><title>${j - i} samples</title></rect>\n`;
    i = j;
  }
  out += `</g>\n<g class="markers">\n`;
  for (const name of ["detect", "recover"]) {
    const m = run.state[name];
    if (!m) continue;
    const x = X(m.at_s), b0 = X(m.bracket[0]), b1 = X(m.bracket[1]);
    out += `<g class="marker ${name}"><title>${name}</title><rect class="band" data-lo="${m.bracket[0]}" data-hi="${m.bracket[1]}" x="${b0.toFixed(1)}" y="${top}" width="${Math.max(1, b1 - b0).toFixed(1)}" height="${bottom - top}"/><line x1="${x.toFixed(1)}" y1="17" x2="${x.toFixed(1)}" y2="${bottom}"/><text x="${(x + 3).toFixed(1)}" y="14">${name} orders-api</text></g>\n`;
  }
  out += `</g>\n<g class="axis" id="time-axis"><line x1="${L}" y1="${bottom}" x2="${L + plot}" y2="${bottom}"/></g>\n</svg>\n`;
  return out;
}

export async function startFakeConsole({ dist, tickMs = 150, port = 0 } = {}) {
  const sessions = new Map();
  const streams = new Set();
  const runs = new Map();
  const history = [];
  const annotations = [];
  const audit = [];
  let halt = { halted: false, by: "", reason: "", at: "", reverted: 0, errors: [] };
  const agents = [
    { id: "fl-app", address: "10.77.0.10:7070", labels: { host: "fl-app", role: "app" }, capabilities: ["dns", "network", "process"], health: "attached", last_seen_s: 0.4, active_faults: [] },
    { id: "fl-db-east", address: "10.77.0.20:7070", labels: { host: "fl-db-east", role: "db", region: "us-east-1" }, capabilities: ["dns", "network"], health: "attached", last_seen_s: 0.2, active_faults: [] },
    { id: "fl-db-west", address: "10.77.0.21:7070", labels: { host: "fl-db-west", role: "db", region: "us-west-2" }, capabilities: ["dns", "network"], health: "lost", last_seen_s: 31, active_faults: [] },
  ];
  const schedules = [
    { name: "nightly-dns", experiment: "dynamodb-dns-failover", cron: "0 3 * * *", paused: false, next_firing: "2026-12-08T03:00:00Z", missed: [{ at: "2026-12-06T03:00:00Z", reason: "skipped:halted" }] },
  ];
  for (let i = 0; i < 4; i++) {
    history.push({ run_id: `hist${i}aaaaaaaaaaaa`, experiment: "dynamodb-dns-failover", verdict: i === 2 ? "FAIL" : "PASS", started_at: `2026-12-0${i + 1}T10:00:00Z`, ttd_s: 1.2, ttr_s: i === 2 ? null : 4 + i, recover_bracket: i === 2 ? null : [3.8 + i, 4.2 + i] });
  }

  const send = (name, data) => {
    const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(frame);
  };
  const fleetChanged = () => send("fleet", { agents });
  const json = (res, status, body) => {
    res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": "application/json" });
    res.end(body === undefined ? "" : JSON.stringify(body));
  };
  const refuse = (res, status, error) => json(res, status, { error });
  const identify = (req) => {
    const auth = req.headers.authorization;
    if (auth && auth.startsWith("Bearer ")) return TOKENS[auth.slice(7)] ?? null;
    const m = /(?:^|;\s*)fl_session=([^;]+)/.exec(req.headers.cookie ?? "");
    return m ? (sessions.get(m[1]) ?? null) : null;
  };
  const readBody = (req) =>
    new Promise((resolve) => {
      let data = "";
      req.on("data", (c) => (data += c));
      req.on("end", () => resolve(data));
    });

  function endRun(run, verdict) {
    clearInterval(run.timer);
    run.state.verdict = verdict;
    run.state.phase = "done";
    for (const f of run.state.faults) if (f.end_s === null) f.end_s = run.state.elapsed_s;
    for (const a of agents) a.active_faults = a.active_faults.filter((f) => f.run_id !== run.state.run_id);
    send("run", run.state);
    send("timeline", { run_id: run.state.run_id, svg: timelineSvg(run) });
    send("run_end", { run_id: run.state.run_id, verdict });
    fleetChanged();
    history.unshift({ run_id: run.state.run_id, experiment: run.state.experiment, verdict, started_at: run.state.started_at, ttd_s: run.state.detect?.at_s ?? null, ttr_s: run.state.recover?.at_s ?? null, recover_bracket: run.state.recover?.bracket ?? null });
  }

  // A run: baseline samples ok, the fault from sample `faultAt`, failures from `failFrom` to
  // `recoverAt` (exclusive), PASS at `endAt` samples. One sample per tick.
  function startRun({ experiment = "dynamodb-dns-failover", faultAt = 4, failFrom = 6, recoverAt = 12, endAt = 40, host = "fl-app" } = {}) {
    const id = randomBytes(8).toString("hex");
    const interval = 0.25;
    const state = {
      run_id: id, experiment, phase: "baseline", started_at: new Date().toISOString(), elapsed_s: 0,
      objectives: [{ name: "automated-failover", kind: "recover_within", limit_s: 15, elapsed_s: 0, state: "pending" }],
      detect: null, recover: null, faults: [], samples: 0, verdict: null,
    };
    const run = { state, samples: [], interval, timer: null };
    runs.set(id, run);
    const agent = agents.find((a) => a.id === host);
    run.timer = setInterval(() => {
      const n = run.samples.length;
      const t = n * interval;
      if (n === faultAt) {
        state.phase = "fault";
        state.faults.push({ target: "app", host, workload: "", start_s: t, end_s: null });
        agent.active_faults.push({ fault_id: `f-${id.slice(0, 6)}`, kind: "dns", run_id: id, workload: "", evidence: { "dns.answered_nodata": 0 } });
      }
      const ok = n < failFrom || n >= recoverAt;
      run.samples.push({ t, ok });
      if (n === failFrom) state.detect = { at_s: t, bracket: [t - interval, t] };
      if (n === recoverAt) {
        state.recover = { at_s: t, bracket: [t - interval, t] };
        state.phase = "recovery";
        state.objectives[0].state = "met";
      }
      for (const f of agent.active_faults) if (f.run_id === id) f.evidence["dns.answered_nodata"] += 3;
      state.samples = run.samples.length;
      state.elapsed_s = t;
      if (state.objectives[0].state === "pending" && n >= faultAt) state.objectives[0].elapsed_s = t - faultAt * interval;
      send("run", state);
      send("timeline", { run_id: id, svg: timelineSvg(run) });
      if (n >= faultAt) fleetChanged();
      if (n + 1 >= endAt) endRun(run, "PASS");
    }, tickMs);
    send("run", state);
    return id;
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://fake");
    const path = url.pathname;
    if (req.method === "GET" && (path === "/" || path.startsWith("/assets/"))) {
      const file = path === "/" ? "index.html" : path.slice("/assets/".length);
      if (file.includes("/") || file.includes("..") || !TYPES[extname(file)]) return refuse(res, 404, "no such asset");
      try {
        const body = readFileSync(join(dist, file));
        res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": TYPES[extname(file)] });
        return res.end(body);
      } catch {
        return refuse(res, 404, "no such asset");
      }
    }
    if (!path.startsWith("/api/")) return refuse(res, 404, "not found");
    let body = {};
    if (req.method === "POST" || req.method === "DELETE") {
      if (req.headers["x-faultline-console"] !== "1" || !(req.headers["content-type"] ?? "").startsWith("application/json")) {
        return refuse(res, 403, "a state-changing request needs X-Faultline-Console: 1 and a JSON body");
      }
      try {
        body = JSON.parse((await readBody(req)) || "{}");
      } catch {
        return refuse(res, 400, "body: not JSON");
      }
    }
    if (path === "/api/session" && req.method === "POST") {
      const me = TOKENS[body.token];
      audit.push({ action: "login", ok: !!me });
      if (!me) return refuse(res, 401, "unknown or revoked token");
      const sid = randomBytes(16).toString("hex");
      sessions.set(sid, me);
      res.writeHead(204, { ...SECURITY_HEADERS, "Set-Cookie": `fl_session=${sid}; Secure; HttpOnly; SameSite=Strict; Path=/` });
      return res.end();
    }
    const me = identify(req);
    if (!me) return refuse(res, 401, "not authenticated: sign in with a token or a client certificate");
    const operator = () => {
      if (me.role === "operator") return true;
      audit.push({ action: `${req.method} ${path}`, by: me.identity, refused: true });
      return false;
    };
    if (path === "/api/session" && req.method === "DELETE") {
      res.writeHead(204, { ...SECURITY_HEADERS, "Set-Cookie": "fl_session=; Max-Age=0; Secure; HttpOnly; SameSite=Strict; Path=/" });
      return res.end();
    }
    if (req.method === "GET") {
      if (path === "/api/me") return json(res, 200, me);
      if (path === "/api/events") {
        res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": "text/event-stream" });
        const all = [...runs.values()];
        res.write(`event: hello\ndata: ${JSON.stringify({ me, halt, active: all.filter((r) => !r.state.verdict).map((r) => r.state), recent: all.filter((r) => r.state.verdict).map((r) => r.state) })}\n\n`);
        for (const r of runs.values()) if (!r.state.verdict) res.write(`event: timeline\ndata: ${JSON.stringify({ run_id: r.state.run_id, svg: timelineSvg(r) })}\n\n`);
        streams.add(res);
        req.on("close", () => streams.delete(res));
        return;
      }
      if (path === "/api/runs/active") return json(res, 200, [...runs.values()].filter((r) => !r.state.verdict).map((r) => r.state));
      if (path === "/api/runs") {
        const e = url.searchParams.get("experiment"), v = url.searchParams.get("verdict");
        const limit = Math.min(500, Number(url.searchParams.get("limit") || 100));
        return json(res, 200, history.filter((r) => (!e || r.experiment === e) && (!v || r.verdict === v)).slice(0, limit));
      }
      let m = /^\/api\/runs\/([^/]+)(\/timeline\.svg)?$/.exec(path);
      if (m) {
        const run = runs.get(m[1]);
        const row = history.find((r) => r.run_id === m[1]);
        if (!run && !row) return refuse(res, 404, `no run ${m[1]}`);
        if (m[2]) {
          const svg = run?.svg ?? (run ? timelineSvg(run) : timelineSvg({ state: { run_id: m[1], faults: [], detect: null, recover: null }, samples: [{ t: 0, ok: true }], interval: 0.25 }));
          res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": "image/svg+xml" });
          return res.end(svg);
        }
        return json(res, 200, { experiment: row?.experiment ?? run.state.experiment, run_id: m[1], verdict: row?.verdict ?? run.state.verdict, objectives: [{ name: "automated-failover", verdict: row?.verdict ?? "PASS", target_s: 15, time_to_detect_s: row?.ttd_s ?? null, time_to_recover_s: row?.ttr_s ?? null, time_to_recover_bracket_s: row?.recover_bracket ?? null }] });
      }
      if (path === "/api/trend" || path === "/api/trend.svg") {
        const e = url.searchParams.get("experiment");
        const pts = history.filter((r) => r.experiment === e);
        if (path === "/api/trend") return json(res, 200, { experiment: e, points: pts.map((r) => ({ run_id: r.run_id, at: r.started_at, ttr_s: r.ttr_s, bracket: r.recover_bracket, verdict: r.verdict })) });
        let svg = `<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="900" height="260" viewBox="0 0 900 260" role="img"><title>time to recover of ${esc(e)}</title>`;
        pts.forEach((p, i) => {
          if (p.ttr_s !== null) svg += `<g class="point" data-run="${esc(p.run_id)}"><circle class="verdict-${p.verdict === "PASS" ? "pass" : "fail"}" cx="${100 + i * 150}" cy="${200 - p.ttr_s * 10}" r="4"/></g>`;
        });
        res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": "image/svg+xml" });
        return res.end(svg + "</svg>\n");
      }
      if (path === "/api/fleet") return json(res, 200, { agents });
      if (path === "/api/schedules") return json(res, 200, schedules);
      if (path === "/api/halt") return json(res, 200, halt);
      return refuse(res, 404, "not found");
    }
    if (req.method !== "POST") return refuse(res, 404, "not found");
    if (path === "/api/halt") {
      if (!operator()) return refuse(res, 403, `role ${me.role} may not halt the fleet`);
      let reverted = 0;
      for (const a of agents) {
        reverted += a.active_faults.length;
        a.active_faults = [];
      }
      halt = { halted: true, by: me.identity, reason: String(body.reason ?? ""), at: new Date().toISOString(), reverted, errors: [] };
      for (const r of runs.values()) if (!r.state.verdict) endRun(r, "ABORTED");
      send("halt", halt);
      fleetChanged();
      return json(res, 200, halt);
    }
    if (path === "/api/resume") {
      if (!operator()) return refuse(res, 403, `role ${me.role} may not resume the fleet`);
      halt = { ...halt, halted: false };
      send("halt", halt);
      return json(res, 200, halt);
    }
    if (path === "/api/runs") {
      if (!operator()) return refuse(res, 403, `role ${me.role} may not start runs`);
      if (halt.halted) return refuse(res, 409, "the fleet is halted: no run starts until someone resumes");
      const text = String(body.experiment ?? "");
      if (!text.trim()) return refuse(res, 400, "experiment: empty");
      const allowed = POLICY[me.team]?.role ?? [];
      for (const m of text.matchAll(/selector:\s*\{\s*role:\s*([\w-]+)/g)) {
        // The controller's words (access::TeamPolicy::CheckRun).
        if (!allowed.includes(m[1])) return refuse(res, 403, `team policy policy.yaml refuses experiment ${/name:\s*([\w-]+)/.exec(text)?.[1]}: (teams.${me.team}.targets) target 't' selects {role: ${m[1]}}, which is not within what team ${me.team} may target: ${allowed.map((r) => `{role: ${r}}`).join(", ")}`);
      }
      return json(res, 201, { run_id: startRun({ experiment: /name:\s*([\w-]+)/.exec(text)?.[1] ?? "experiment" }) });
    }
    let m = /^\/api\/runs\/([^/]+)\/annotations$/.exec(path);
    if (m) {
      if (!operator()) return refuse(res, 403, `role ${me.role} may not annotate runs`);
      const run = runs.get(m[1]);
      if (!run) return refuse(res, 404, `no run ${m[1]}`);
      const text = String(body.text ?? "");
      if (text.length < 1 || text.length > 500) return refuse(res, 400, "text: 1 to 500 characters");
      const a = { run_id: m[1], at_s: run.state.elapsed_s, author: me.identity, text };
      annotations.push(a);
      send("annotation", a);
      return json(res, 201, a);
    }
    m = /^\/api\/schedules\/([^/]+)\/(pause|resume)$/.exec(path);
    if (m) {
      if (!operator()) return refuse(res, 403, `role ${me.role} may not ${m[2]} schedules`);
      const s = schedules.find((x) => x.name === m[1]);
      if (!s) return refuse(res, 404, `no schedule ${m[1]}`);
      s.paused = m[2] === "pause";
      res.writeHead(204, SECURITY_HEADERS);
      return res.end();
    }
    return refuse(res, 404, "not found");
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const keepalive = setInterval(() => {
    for (const r of streams) r.write(": keepalive\n\n");
  }, 15000);
  // Shows every viewer a finished run with the given timeline (the report renderer's own SVG).
  const publishFinished = (state, svg) => {
    runs.set(state.run_id, { state, samples: [], interval: 0.25, timer: null, svg });
    send("run", state);
    send("timeline", { run_id: state.run_id, svg });
  };
  // Ends every open event stream, then ends `runId`'s run while no viewer is connected (as when a
  // network change or a dropped slow stream cuts the page off just as the run ends).
  const endRunWhileDisconnected = (runId, verdict = "PASS") => {
    for (const r of streams) r.end();
    streams.clear();
    const run = runs.get(runId);
    if (run) {
      while (run.samples.length < 13) run.samples.push({ t: run.samples.length * run.interval, ok: run.samples.length < 6 || run.samples.length >= 12 });
      run.state.samples = run.samples.length;
      run.state.recover = { at_s: 3, bracket: [2.75, 3] };
      endRun(run, verdict);
    }
  };
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    startRun,
    endRunWhileDisconnected,
    publishFinished,
    runs,
    audit,
    activeFaults: () => agents.reduce((n, a) => n + a.active_faults.length, 0),
    close: async () => {
      clearInterval(keepalive);
      for (const r of runs.values()) clearInterval(r.timer);
      for (const r of streams) r.end();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// node fake_server.mjs DIST [PORT]: serve the page for a person to look at (one run started).
if (import.meta.url === `file://${process.argv[1]}`) {
  const fake = await startFakeConsole({ dist: process.argv[2], port: Number(process.argv[3] ?? 0), tickMs: 500 });
  fake.startRun({ endAt: 400 });
  console.log(`fake console on ${fake.url} (tokens: operator-token, viewer-token)`);
}
