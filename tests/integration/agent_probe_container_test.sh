#!/usr/bin/env bash
# A probe `from:` a container target runs inside that container's network namespace (issue 14
# item 4). On `faultline sandbox up --containers` (real Podman containers built from the project's
# binaries), a DNS nodata fault acts inside the orders container fl-orders-1 only. Two agent-side
# probes of the same name, run by fl-app's agent:
#   in-orders — `from: orders` (the container target): the agent resolves the container itself and
#               runs the probe in its netns, with the container's own resolv.conf (no server given);
#   on-host   — `from: app-host` (fl-app's host, same agent), straight to the sandbox's dnsmasq.
# One sandbox bring-up, two runs of the same fault:
#   1. objective "the container's probe detects it within 3s": PASS (exit 0), and the host probe
#      saw no failure at all;
#   2. negative control: objective "the host's probe detects it within 3s": FAIL (exit 1) — the
#      host never sees the container's fault.
# Both reports (JSON, text, HTML) say where each probe ran: the container, or the host.
# Usage: agent_probe_container_test.sh BIN_DIR
# shellcheck disable=SC2154  # rc, R: set by run_experiment (lib.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
command -v podman >/dev/null || fail "podman is not installed (scripts/lib.sh installs it)"
EAST=dynamodb.us-east-1.containers.sandbox.test

sandbox_up --containers --failover auto

experiment() {  # experiment FILE OBJECTIVE_PROBE
  cat >"$1" <<EOF
apiVersion: faultline/v1
kind: Experiment
metadata: {name: agent-probe-in-container}
targets:
  orders: {selector: {role: app}, workloads: {runtime: docker, labels: {app: orders}}}
  app-host: {selector: {role: app}}
faults:
  - name: east-nodata-in-orders
    target: orders
    dns: {domains: ["$EAST"], mode: nodata}
    duration: 4s
probes:
  - name: in-orders        # inside fl-orders-1, through its own resolv.conf
    dns: {name: $EAST, expect: answer, timeout: 1s}
    interval: 200ms
    from: orders
  - name: on-host          # fl-app's host, same agent, same resolver address
    dns: {name: $EAST, server: "10.77.0.2", expect: answer, timeout: 1s}
    interval: 200ms
    from: app-host
steady_state: {probes: [in-orders, on-host], for: 1s}
objectives:
  - {name: noticed, probe: $2, detect_within: 3s}
max_duration: 2m
EOF
}

probe() { jq -c --arg n "$1" '.probes[] | select(.name==$n)' "$R"; }
failures() { jq '[.samples[] | select(.ok == false)] | length' <<<"$1"; }

# --- 1. the container's probe sees the container's fault ---------------------------------------
experiment "$WORK/in-container.yaml" in-orders
run_experiment "$WORK/in-container.yaml" --report-html "$WORK/report.html"
cp "$R" "$WORK/in-container.json"
[ "$rc" -eq 0 ] || fail "expected PASS (0), got $rc"
[ "$(jq -r '.objectives[0].verdict' "$R")" = PASS ] || fail "noticed should PASS"
agent=$(jq -r '.faults[0].agents[0].agent' "$R")
[ "$agent" = fl-app ] || fail "the fault ran on $agent, not fl-app"

inside=$(probe in-orders)
[ "$(jq -r '.from' <<<"$inside")" = orders ] || fail "in-orders: from $(jq -c .from <<<"$inside")"
jq -e '.ran_on | length == 1 and .[0].agent == "fl-app" and .[0].ran_in == "workload"
       and (.[0].workload | test("^container fl-orders-1 \\(docker [0-9a-f]+\\) on fl-app$"))
       and .[0].clock_error_ms > 0' <<<"$inside" >/dev/null ||
  fail "in-orders did not run in fl-orders-1: $(jq -c .ran_on <<<"$inside")"
jq -e '[.samples[] | select(.where != "fl-app/fl-orders-1")] | length == 0' <<<"$inside" >/dev/null ||
  fail "an in-orders sample does not name the container: $(jq -c '[.samples[].where] | unique' <<<"$inside")"
jq -e '(.timeline.t_inject_s) as $i | (.timeline.t_revert_start_s) as $e
       | [.probes[] | select(.name=="in-orders") | .samples[]
          | select(.ok == false and .detail == "nodata" and .t_s >= $i and .t_s < $e)] | length > 0' \
  "$R" >/dev/null || fail "the probe inside the container saw no nodata answer during the fault"
# Before the fault the container's probe answered through the container's resolver: it works there.
jq -e '[.probes[] | select(.name=="in-orders") | .samples[] | select(.ok)] | length > 0' "$R" \
  >/dev/null || fail "the probe inside the container never succeeded"

host=$(probe on-host)
jq -e '.ran_on | length == 1 and .[0].agent == "fl-app" and .[0].ran_in == "host"
       and (.[0] | has("workload") | not)' <<<"$host" >/dev/null ||
  fail "on-host did not run on fl-app's host: $(jq -c .ran_on <<<"$host")"
[ "$(jq '.samples | length' <<<"$host")" -gt 0 ] || fail "the host probe took no sample"
[ "$(failures "$host")" = 0 ] ||
  fail "the host's probe failed: $(jq -c '[.samples[] | select(.ok == false)][:3]' <<<"$host")"
no_fault_table fl-app || fail "fault table in the host fl-app: $(fault_tables fl-app)"

# Where each probe ran, in the text and HTML reports.
grep -q 'from orders: ran on container fl-orders-1 (docker [0-9a-f]*) on fl-app' "$WORK/out.txt" ||
  fail "the text report does not say the probe ran in the container"
grep -q 'from app-host: ran on host fl-app' "$WORK/out.txt" ||
  fail "the text report does not say the probe ran on the host"
grep -q '<th>ran from</th>' "$WORK/report.html" || fail "the HTML report has no 'ran from' column"
grep -q 'in container fl-orders-1 (docker [0-9a-f]*) on fl-app' "$WORK/report.html" ||
  fail "the HTML report does not name the container"
grep -q 'host fl-app</span>' "$WORK/report.html" || fail "the HTML report does not name the host"
grep -q 'probe in-orders runs in container fl-orders-1' "$SANDBOX_RUN"/logs/*.log ||
  fail "fl-app's agent did not log entering the container"
pass "a probe from the orders container saw the DNS fault inside it (PASS); the host's probe saw nothing"

# --- 2. negative control: the host's probe cannot notice the container's fault ----------------
experiment "$WORK/on-host.yaml" on-host
run_experiment "$WORK/on-host.yaml"
[ "$rc" -eq 1 ] || fail "negative control: expected FAIL (1), got $rc"
[ "$(jq -r '.objectives[0].verdict' "$R")" = FAIL ] || fail "negative control: noticed should FAIL"
[ "$(failures "$(probe on-host)")" = 0 ] || fail "negative control: the host's probe failed"
[ "$(failures "$(probe in-orders)")" -gt 0 ] ||
  fail "negative control: the fault did not bite inside the container this time"
pass "negative control: the same fault, judged on the host's probe, FAILs (not detected)"

"$BIN/faultline" sandbox down >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; fail "sandbox down"; }
