#!/usr/bin/env bash
# Secure by default, on real namespaces: the sandbox's agents serve mTLS only (one listener each),
# plaintext and certificate-less clients are refused, an agent-role certificate cannot apply a
# fault, and --insecure is refused outside loopback / the sandbox's namespaces.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
CERTS="$SANDBOX_RUN/certs"

# 1. --insecure on an address that is neither loopback nor a sandbox host: refused before serving.
for listen in 0.0.0.0:0 10.77.0.1:0 192.0.2.1:7070; do
  set +e
  "$BIN/faultline-agent" --insecure --listen "$listen" --state-dir "$WORK/state" \
    >"$WORK/insecure.log" 2>&1
  rc=$?
  set -e
  [ $rc -eq 2 ] || fail "--insecure on $listen: expected exit 2, got $rc"
  grep -q -- "--insecure refused on $listen" "$WORK/insecure.log" ||
    fail "--insecure on $listen: no clear message: $(cat "$WORK/insecure.log")"
done
# ...and no TLS flags at all is refused too (mTLS is not optional).
set +e
"$BIN/faultline-agent" --listen 127.0.0.1:0 --state-dir "$WORK/state" >"$WORK/notls.log" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "mTLS is required" "$WORK/notls.log" || fail "agent without TLS flags started"
pass "--insecure refused on 0.0.0.0, 10.77.0.1 (root namespace), 192.0.2.1; no-TLS start refused"

# 1b. The gRPC port's connection cap (issue 13), on a real agent: with --max-connections 2, a
# third idle connection is closed at once and counted; once the two go, a real call is served.
"$BIN/faultline-agent" --dry-run --insecure --listen 127.0.0.1:0 --max-connections 2 \
  --metrics-listen 127.0.0.1:0 --ready-file "$WORK/cap.ready" --state-dir "$WORK/capstate" \
  --name cap-agent >"$WORK/cap.log" 2>&1 &
cap_pid=$!
for _ in $(seq 100); do [ -s "$WORK/cap.ready" ] && break; sleep 0.1; done
[ -s "$WORK/cap.ready" ] || fail "cap agent not ready: $(cat "$WORK/cap.log")"
cap_port=$(sed -E 's/.*:([0-9]+)$/\1/' "$WORK/cap.ready")
cap_metrics=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/metrics' "$WORK/cap.log" | head -1)
cap_value() { curl -fsS --max-time 2 "$cap_metrics" | awk -v m="$1" '$1 == m {print $2}'; }
exec 5<>"/dev/tcp/127.0.0.1/$cap_port" 6<>"/dev/tcp/127.0.0.1/$cap_port" 7<>"/dev/tcp/127.0.0.1/$cap_port"
for _ in $(seq 100); do [ "$(cap_value faultline_agent_connections_refused_total)" = 1 ] && break; sleep 0.1; done
[ "$(cap_value faultline_agent_connections_refused_total)" = 1 ] || fail "third connection not refused: $(curl -s "$cap_metrics")"
[ "$(cap_value faultline_agent_connections_open)" = 2 ] || fail "open connections: $(curl -s "$cap_metrics")"
set +e
read -r -t 10 -u 7 _
rc=$?
set -e
[ $rc -gt 128 ] && fail "the refused connection is still open"
exec 5>&- 6>&- 7>&-
for _ in $(seq 100); do [ "$(cap_value faultline_agent_connections_open)" = 0 ] && break; sleep 0.1; done
printf 'agents:\n  - name: cap-agent\n    address: 127.0.0.1:%s\n' "$cap_port" >"$WORK/cap-inventory.yaml"
"$BIN/faultline" agents --insecure --inventory "$WORK/cap-inventory.yaml" >"$WORK/cap-agents.txt" 2>&1 ||
  fail "GetInfo through the gate after the cap freed: $(cat "$WORK/cap-agents.txt")"
grep -q "cap-agent" "$WORK/cap-agents.txt" || fail "agents output: $(cat "$WORK/cap-agents.txt")"
kill "$cap_pid"
wait "$cap_pid" || fail "cap agent did not stop cleanly: $(cat "$WORK/cap.log")"
pass "--max-connections 2: the third connection closed at once and counted, open gauge 2; served once freed"

sandbox_up --failover auto

# 2. Port scan of a running agent: in fl-app the agent listens on exactly two ports: gRPC (mTLS) on
# :7070 and, because the sandbox asks for it with --metrics-listen, Prometheus metrics on :9464,
# which answers GET /metrics and nothing else.
ss_out=$(ip netns exec fl-app ss -ltnpH)
echo "$ss_out"
agent_listeners=$(grep -c 'faultline-agent' <<<"$ss_out" || true)
[ "$agent_listeners" = 2 ] || fail "expected two agent listeners in fl-app (gRPC, metrics), got $agent_listeners"
grep 'faultline-agent' <<<"$ss_out" | grep -qE '(^|[^0-9])10\.77\.0\.10\]?:7070' || fail "agent not on 10.77.0.10:7070"
grep 'faultline-agent' <<<"$ss_out" | grep -qE '(^|[^0-9])10\.77\.0\.10\]?:9464' || fail "agent metrics not on 10.77.0.10:9464"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://10.77.0.10:9464/metrics)" = 200 ] || fail "GET /metrics"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://10.77.0.10:9464/)" = 404 ] || fail "metrics port serves more than /metrics"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x http://10.77.0.10:9464/metrics)" = 405 ] || fail "metrics port accepts POST"

# 3. That listener speaks TLS and requires a client certificate.
tls_probe() {  # extra openssl s_client args...; prints the handshake transcript
  timeout 10 openssl s_client -connect 10.77.0.10:7070 -servername 10.77.0.10 -alpn h2 \
    -CAfile "$CERTS/ca.pem" -verify_return_error "$@" </dev/null 2>&1 | tr -d '\0' || true
}
with_cert=$(tls_probe -cert "$CERTS/operator.pem" -key "$CERTS/operator-key.pem")
grep -q "Verify return code: 0 (ok)" <<<"$with_cert" || fail "operator TLS handshake failed: $with_cert"
# TLS 1.2, so the server's refusal is part of the handshake (in 1.3 it comes after it).
no_cert=$(tls_probe -tls1_2)
grep -qE "Cipher is \(NONE\)|unexpected eof|alert handshake failure|certificate required" <<<"$no_cert" ||
  fail "a client without a certificate was not refused: $no_cert"
pass "listeners: gRPC 10.77.0.10:7070 (TLS with verified server cert; no client cert -> refused) and GET-only /metrics on :9464"

# 4. Plaintext gRPC to an mTLS agent fails; the default (sandbox certificates) works.
set +e
"$BIN/faultline" agents --insecure >"$WORK/plain.txt" 2>&1
prc=$?
set -e
[ $prc -eq 4 ] || fail "plaintext client: expected exit 4 (unreachable), got $prc: $(cat "$WORK/plain.txt")"
"$BIN/faultline" agents >"$WORK/agents.txt" || fail "faultline agents over mTLS: $(cat "$WORK/agents.txt")"
[ "$(grep -c 'active_faults 0' "$WORK/agents.txt")" = 4 ] || fail "agents: $(cat "$WORK/agents.txt")"
pass "plaintext client refused; CLI uses the sandbox's operator certificate by default"

# 5. An agent-role certificate from the right CA: PERMISSION_DENIED, nothing applied, audit line.
set +e
"$BIN/faultline" run --quiet --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/agent.pem" \
  --tls-key "$CERTS/agent-key.pem" "$FLAGSHIP" >"$WORK/denied.txt" 2>&1
drc=$?
set -e
[ $drc -eq 4 ] || fail "agent-role run: expected exit 4, got $drc: $(tail -n 20 "$WORK/denied.txt")"
grep -q "PERMISSION_DENIED\|refused" "$WORK/denied.txt" || fail "no refusal in: $(cat "$WORK/denied.txt")"
for h in fl-app fl-dns fl-db-east fl-db-west; do no_fault_table "$h" || fail "applied on $h"; done
grep -q 'audit: .*action=ApplyFault outcome=PERMISSION_DENIED identity="faultline-agent (agent)" peer=ipv4:10.77.0.1:' \
  "$SANDBOX_RUN/logs/agent-fl-app.log" || fail "no audit line for the refusal on fl-app"
pass "agent-role certificate: PERMISSION_DENIED, nothing applied, audit line on the agent"

# 6. A client certificate from a foreign CA is refused in the handshake.
"$BIN/faultline" certs init "$WORK/foreign" >/dev/null
set +e
"$BIN/faultline" agents --tls-ca "$CERTS/ca.pem" --tls-cert "$WORK/foreign/operator.pem" \
  --tls-key "$WORK/foreign/operator-key.pem" >"$WORK/foreign.txt" 2>&1
frc=$?
set -e
[ $frc -eq 4 ] || fail "foreign CA: expected exit 4, got $frc"
pass "foreign-CA client certificate refused"
