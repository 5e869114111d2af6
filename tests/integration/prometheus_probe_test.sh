#!/usr/bin/env bash
# A real Prometheus (Debian's prometheus, `sandbox up --prometheus`) scraping the sandbox's orders
# service; experiments/orders-slo-promql.yaml measures recovery on the PromQL error ratio.
#   auto: the PromQL probe detects the DNS fault (failing samples after inject) and recovers
#         through failover: PASS, exit 0. The same run carries a prometheus_alert abort on
#         OrdersErrorRatioHigh, which must not fire (the control of the `off` abort below).
#   off:  the negative control: without failover the SLI never recovers: FAIL, exit 1. Then the
#         same experiment with the alert abort: the alert fires and the run is ABORTED (exit 3),
#         with the fault reverted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
mode="${2:?auto|off}"
EXP="$ROOT/experiments/orders-slo-promql.yaml"
PROM=http://10.77.0.2:9090

command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/lib.sh installs it)"
sandbox_up --prometheus --failover "$mode"
curl -fsS "$PROM/-/ready" >/dev/null || fail "Prometheus is not ready after sandbox up"
"$BIN/faultline" sandbox status --output json | jq -e '.prometheus == true' >/dev/null ||
  fail "sandbox status does not report Prometheus"

# The experiment plus the alert abort condition.
sed 's|^abort: \[{probe: orders-api, failing_for: 5m}\]$|abort:\n  - {probe: orders-api, failing_for: 5m}\n  - {prometheus_alert: OrdersErrorRatioHigh, url: "http://10.77.0.2:9090", interval: 500ms}|' \
  "$EXP" >"$WORK/with-alert.yaml"
grep -q 'prometheus_alert: OrdersErrorRatioHigh' "$WORK/with-alert.yaml" || fail "could not add the alert abort"

run() {  # run EXPERIMENT REPORT → sets rc
  set +e
  "$BIN/faultline" run "$1" --report-json "$2" >"$WORK/out.txt" 2>"$WORK/err.txt"
  rc=$?
  set -e
  cat "$WORK/err.txt" "$WORK/out.txt"
  [ -f "$2" ] || fail "no JSON report written"
}
objective() { jq -r ".objectives[] | select(.name==\"sli-recovers-by-failover\") | .$2" "$1"; }

if [ "$mode" = auto ]; then
  R="$WORK/auto.json"
  run "$WORK/with-alert.yaml" "$R"
  [ $rc -eq 0 ] || fail "expected exit 0 (PASS) with automated failover, got $rc"
  [ "$(objective "$R" verdict)" = PASS ] || fail "sli-recovers-by-failover: $(objective "$R" verdict)"
  ttd=$(objective "$R" time_to_detect_s)
  ttr=$(objective "$R" time_to_recover_s)
  [ "$ttd" != null ] || fail "the PromQL probe did not detect the fault (no failing sample)"
  [ "$ttr" != null ] || fail "the PromQL probe did not recover"
  jq -e --argjson d "$ttd" --argjson r "$ttr" -n '$r > $d' >/dev/null ||
    fail "recovery ${ttr}s is not after detection ${ttd}s"
  # The failing samples say why, in Prometheus's numbers.
  jq -e '[.probes[] | select(.name=="orders-error-ratio") | .samples[] | select(.ok==false)
          | .detail | test("not < 0.05")] | any' "$R" >/dev/null ||
    fail "no failing PromQL sample names the value and the bound"
  no_fault_table fl-app || fail "fault table left behind in fl-app"
  # The latency histogram the orders service exports is scraped and usable by PromQL.
  curl -fsS "$PROM/api/v1/query" --data-urlencode \
    'query=histogram_quantile(0.9, sum by (le) (rate(orders_request_duration_seconds_bucket[1m])))' |
    jq -e '.data.result[0].value[1] | tonumber | . > 0' >/dev/null ||
    fail "no p90 latency from orders_request_duration_seconds in Prometheus"
  pass "PromQL SLI detected (${ttd}s) and recovered (${ttr}s) through failover; alert did not fire"
else
  R="$WORK/off.json"
  run "$EXP" "$R"
  [ $rc -eq 1 ] || fail "expected exit 1 (FAIL) without failover, got $rc"
  [ "$(objective "$R" verdict)" = FAIL ] || fail "sli-recovers-by-failover should FAIL: $(objective "$R" verdict)"
  [ "$(objective "$R" time_to_detect_s)" != null ] || fail "the PromQL probe did not detect the fault"
  [ "$(objective "$R" time_to_recover_s)" = null ] || fail "time_to_recover should be null"
  pass "PromQL SLI FAILs without failover (negative control)"

  # The alert fires once most answers are errors: the run aborts and reverts.
  R="$WORK/abort.json"
  run "$WORK/with-alert.yaml" "$R"
  [ $rc -eq 3 ] || fail "expected exit 3 (ABORTED) on the firing alert, got $rc"
  [ "$(jq -r .verdict "$R")" = ABORTED ] || fail "verdict $(jq -r .verdict "$R")"
  grep -q "Prometheus alert OrdersErrorRatioHigh firing" "$WORK/out.txt" "$WORK/err.txt" ||
    fail "the abort reason does not name the alert"
  no_fault_table fl-app || fail "fault table left behind in fl-app after the abort"
  east_resolves || fail "east endpoint does not resolve after the abort"
  pass "a firing Prometheus alert aborts the run and reverts the fault"
fi
