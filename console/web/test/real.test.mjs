// The page against the real faultline-controller during a sandbox run (started by
// tests/console/console_live_test.sh, which sets the environment below). Same scenarios as the
// fake's (scenarios.mjs); runs are started with the CLI through the controller.
//   FAULTLINE_CONSOLE_URL       https://HOST:PORT of --console-listen
//   FAULTLINE_OPERATOR_TOKEN, FAULTLINE_VIEWER_TOKEN   from `faultline token create`, or
//   FAULTLINE_OPERATOR_CERT/_KEY, FAULTLINE_VIEWER_CERT/_KEY   client certificates (PEM) with
//                               the URI SANs faultline:role:operator|viewer
//   FAULTLINE_START_RUN         program: ARG recovering|long, starts a run and exits with
//                               `faultline run`'s exit code when it ends
//   FAULTLINE_FAULTS_LEFT       program printing how many faults are in effect on all hosts
//   FAULTLINE_POLICY_OUTSIDE, FAULTLINE_POLICY_INSIDE and FAULTLINE_POLICY_TOKEN or _CERT/_KEY
//                               (optional): two experiment files, outside / inside the team policy,
//                               and a team operator's credential
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { launch } from "./browser.mjs";
import * as s from "./scenarios.mjs";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run tests/console/console_live_test.sh)`);
  return v;
};
const run = (program, args) =>
  new Promise((resolve) => {
    execFile(program, args, { maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }));
  });

// A token when the environment has one, else the client certificate.
const credential = (who) =>
  process.env[`FAULTLINE_${who}_TOKEN`] ?? { cert: env(`FAULTLINE_${who}_CERT`), key: env(`FAULTLINE_${who}_KEY`) };

let browser, backend;
before(async () => {
  browser = await launch();
  const policy = process.env.FAULTLINE_POLICY_OUTSIDE
    ? {
        operatorToken: credential("POLICY"),
        outside: readFileSync(env("FAULTLINE_POLICY_OUTSIDE"), "utf8"),
        inside: readFileSync(env("FAULTLINE_POLICY_INSIDE"), "utf8"),
      }
    : null;
  backend = {
    url: env("FAULTLINE_CONSOLE_URL"),
    tokens: { operator: credential("OPERATOR"), viewer: credential("VIEWER") },
    timeoutMs: 180000,
    // The run's CLI exit code says how it ended: 0 PASS for the recovering run, 3 ABORTED for the
    // run the stop button halts.
    startRun: async (kind) => {
      const r = await run(env("FAULTLINE_START_RUN"), [kind]);
      const want = kind === "long" ? 3 : 0;
      assert.equal(r.code, want, `faultline run (${kind}) exited ${r.code}, expected ${want}:\n${r.stdout}\n${r.stderr}`);
    },
    faultsLeft: async () => {
      const r = await run(env("FAULTLINE_FAULTS_LEFT"), []);
      assert.equal(r.code, 0, r.stderr);
      return Number(r.stdout.trim());
    },
    policy,
  };
});
after(async () => browser?.close());

test("during a sandbox run the live view gains samples and the recover marker appears (pixels checked)", async () => {
  await s.liveViewGainsSamplesAndRecoverMarker(browser, backend);
});

test("emergency stop on a sandbox run", async (t) => {
  await s.viewerRefusedThenOperatorStops(t, browser, backend);
});

test("a team cannot target agents outside its policy", async (t) => {
  if (!backend.policy) {
    t.skip("no team policy or no POST /api/runs in this controller (FAULTLINE_POLICY_OUTSIDE unset)");
    return;
  }
  await s.teamPolicyRefusesOutsideTargets(browser, backend);
});
