#!/usr/bin/env bash
# The console in a real browser against the real faultline-controller during real sandbox runs
# (console/web/test/real.test.mjs): the live view gains samples and the recover marker appears
# (its screenshot checked by pixels); a viewer's stop is refused with the server's message; the
# operator's stop (keyboard, confirmation) halts the run: the CLI's run ends ABORTED (exit 3) and
# no faultline_ nft table and no active fault is left on any host; every viewer sees the halt;
# Resume lifts it. With a team policy, a team cannot target agents outside it.
# The sandbox's services without its agents (`sandbox up --no-agents`); one agent per sandbox host
# attached to the controller over mTLS, with the sandbox agents' labels.
# Exit 77 (skipped) while the controller has no --console-listen (the console server not built in).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

"$BIN/faultline-controller" --help 2>&1 | grep -q -- --console-listen || {
  echo "SKIP: faultline-controller has no --console-listen"
  exit 77
}
command -v chromium >/dev/null || fail "chromium is not installed (scripts/lib.sh installs it)"
[ -d "$ROOT/console/web/node_modules/playwright-core" ] ||
  fail "console/web/node_modules is missing (the build runs npm ci)"

HOSTS=(fl-app fl-dns fl-db-east fl-db-west)
declare -A ROLE=([fl-app]=app [fl-dns]=dns [fl-db-east]=db [fl-db-west]=db)
declare -A REGION=([fl-db-east]=us-east-1 [fl-db-west]=us-west-2)
CTL=10.77.0.1:15870
CONSOLE_PORT=15871
CERTS="$WORK/certs"
STORE="sqlite://$WORK/history.db"

sandbox_up --no-agents
agent_certs=()
for h in "${HOSTS[@]}"; do agent_certs+=(--agent "$h"); done
"$BIN/faultline" certs init "$CERTS" --san 10.77.0.1 --san 127.0.0.1 "${agent_certs[@]}" >/dev/null
# A team policy when the controller has one (controller/access): team orders may target role=app.
POLICY=()
if "$BIN/faultline-controller" --help 2>&1 | grep -q -- --policy; then
  cat >"$WORK/policy.yaml" <<'YAML'
apiVersion: faultline/v1
kind: TeamPolicy
teams:
  orders:
    targets:
      - {role: app}
YAML
  POLICY=(--policy "$WORK/policy.yaml")
fi
"$BIN/faultline-controller" --listen "$CTL" --console-listen "127.0.0.1:$CONSOLE_PORT" \
  "${POLICY[@]}" --store "$STORE" --heartbeat 200ms --lease-ttl 5s --tls-ca "$CERTS/ca.pem" \
  --tls-cert "$CERTS/controller.pem" --tls-key "$CERTS/controller-key.pem" \
  --ready-file "$WORK/controller.ready" >"$WORK/controller.log" 2>&1 &
await 30 test -s "$WORK/controller.ready" || { cat "$WORK/controller.log" >&2; fail "controller did not start"; }
for h in "${HOSTS[@]}"; do
  labels=(--label "host=$h" --label "role=${ROLE[$h]}")
  [ -n "${REGION[$h]:-}" ] && labels+=(--label "region=${REGION[$h]}")
  ip netns exec "$h" "$BIN/faultline-agent" --controller "$CTL" --name "$h" "${labels[@]}" \
    --state-dir "$WORK/state-$h" --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/agent-$h.pem" \
    --tls-key "$CERTS/agent-$h-key.pem" --controller-max-backoff 300ms --max-lease-ttl 1m \
    >"$WORK/agent-$h.log" 2>&1 &
done
attached() {
  [ "$("$BIN/faultline" agents --controller "$CTL" --tls-dir "$CERTS" --output json 2>/dev/null |
    jq '[.[] | select(.live)] | length')" = "${#HOSTS[@]}" ]
}
await 60 attached || fail "the sandbox's agents did not attach to the controller"

URL="https://127.0.0.1:$CONSOLE_PORT"
# client_cert NAME CN ROLE TEAM: a client certificate from the development CA carrying the console
# role and team as URI SANs (as docs/console-api.md says), made with the openssl program.
client_cert() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
    -keyout "$CERTS/$1-key.pem" -out "$WORK/$1.csr" 2>"$WORK/openssl.err" ||
    fail "openssl req: $(cat "$WORK/openssl.err")"
  printf 'subjectAltName=URI:faultline:role:%s,URI:faultline:team:%s\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' \
    "$3" "$4" >"$WORK/$1.ext"
  openssl x509 -req -in "$WORK/$1.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca-key.pem" \
    -CAcreateserial -days 2 -out "$CERTS/$1.pem" -extfile "$WORK/$1.ext" 2>"$WORK/openssl.err" ||
    fail "openssl x509: $(cat "$WORK/openssl.err")"
}
# The console's answer status to a request (curl; certificate or token from the arguments).
console_status() {  # console_status METHOD PATH BODY [CURL_ARGS...]
  local method=$1 path=$2 body=$3
  shift 3
  curl -sk -o /dev/null -w '%{http_code}' -X "$method" -H 'X-Faultline-Console: 1' \
    -H 'Content-Type: application/json' --data "$body" "$@" "$URL$path"
}
client_cert console-operator alice operator orders
client_cert console-viewer victor viewer orders
# Tokens from `faultline token create` when the controller issues them and the console accepts
# them; else the browsers present the certificates above.
token() {  # token ROLE TEAM
  "$BIN/faultline" token create --role "$1" --team "$2" --controller "$CTL" --tls-dir "$CERTS" \
    2>>"$WORK/token.err" | tail -n 1
}
export FAULTLINE_CONSOLE_URL="$URL"
op_token="" viewer_token=""
if "$BIN/faultline" token create --help >/dev/null 2>&1; then
  op_token=$(token operator orders) || true
  viewer_token=$(token viewer orders) || true
fi
if [ -n "$op_token" ] && [ -n "$viewer_token" ] &&
  [ "$(console_status POST /api/session "{\"token\":\"$op_token\"}")" = 204 ]; then
  echo "console login: tokens from faultline token create"
  export FAULTLINE_OPERATOR_TOKEN="$op_token" FAULTLINE_VIEWER_TOKEN="$viewer_token"
else
  echo "console login: client certificates (tokens not accepted by this controller's console)"
  export FAULTLINE_OPERATOR_CERT="$CERTS/console-operator.pem"
  export FAULTLINE_OPERATOR_KEY="$CERTS/console-operator-key.pem"
  export FAULTLINE_VIEWER_CERT="$CERTS/console-viewer.pem"
  export FAULTLINE_VIEWER_KEY="$CERTS/console-viewer-key.pem"
fi
[ "$(console_status GET /api/me "" --cert "$CERTS/console-viewer.pem" \
  --key "$CERTS/console-viewer-key.pem" -X GET)" = 200 ] ||
  fail "the console does not accept the viewer's client certificate"

# Runs for the page: the flagship as it is (detects, recovers: PASS) and with a fault that lasts
# until someone stops it.
sed -E 's/^(    duration:) 20s/\1 10m/' "$FLAGSHIP" >"$WORK/long.yaml"
grep -q 'duration: 10m' "$WORK/long.yaml" || fail "could not make the long experiment"
cat >"$WORK/start-run" <<SH
#!/usr/bin/env bash
case "\$1" in recovering) exp="$FLAGSHIP" ;; long) exp="$WORK/long.yaml" ;; *) exit 2 ;; esac
# The team's operator (faultline:team:orders): under a team policy a principal without a team
# may not start runs.
exec "$BIN/faultline" run "\$exp" --controller "$CTL" --tls-ca "$CERTS/ca.pem" \
  --tls-cert "$CERTS/console-operator.pem" --tls-key "$CERTS/console-operator-key.pem" --quiet
SH
# Faults in effect anywhere: on every host the kernel's faultline_ nft tables (the capability
# probe's table aside), the agent's netem qdiscs (handle fa17:) and its journal's records, plus the
# fleet's active faults as the controller reports them.
cat >"$WORK/faults-left" <<SH
#!/usr/bin/env bash
set -euo pipefail
n=0
for h in ${HOSTS[*]}; do
  t=\$(ip netns exec "\$h" nft list tables | awk '\$3 ~ /^faultline_/ && \$3 !~ /capcheck/' | wc -l)
  q=\$(ip netns exec "\$h" tc qdisc show | grep -c ' fa17:' || true)
  j=\$(find "$WORK/state-\$h/journal" -name '*.pb' 2>/dev/null | wc -l)
  n=\$((n + t + q + j))
done
f=\$("$BIN/faultline" faults --controller "$CTL" --tls-dir "$CERTS" --output json | jq '.faults | length')
echo \$((n + f))
SH
chmod +x "$WORK/start-run" "$WORK/faults-left"

# The team policy through the page: when the controller has one and its console starts runs.
sed -E 's/selector: \{role: app\}/selector: {role: db}/' "$FLAGSHIP" >"$WORK/outside.yaml"
if [ ${#POLICY[@]} -gt 0 ] && [ "$(console_status POST /api/runs '{"experiment":""}' \
  --cert "$CERTS/console-operator.pem" --key "$CERTS/console-operator-key.pem")" != 404 ]; then
  export FAULTLINE_POLICY_OUTSIDE="$WORK/outside.yaml" FAULTLINE_POLICY_INSIDE="$FLAGSHIP"
  export FAULTLINE_POLICY_CERT="$CERTS/console-operator.pem"
  export FAULTLINE_POLICY_KEY="$CERTS/console-operator-key.pem"
  [ -n "${FAULTLINE_OPERATOR_TOKEN:-}" ] && export FAULTLINE_POLICY_TOKEN="$FAULTLINE_OPERATOR_TOKEN"
else
  echo "team policy through the console: not tested (no --policy, or no POST /api/runs)"
fi
export FAULTLINE_START_RUN="$WORK/start-run" FAULTLINE_FAULTS_LEFT="$WORK/faults-left"
# The browser runs in this namespace: no address of the sandbox's may appear here while it loads
# (Chromium aborts its loads on a new address, ERR_NETWORK_CHANGED), so fl-root has no IPv6.
[ -z "$(ip -6 addr show dev fl-root)" ] || fail "fl-root has an IPv6 address: $(ip -6 addr show dev fl-root)"
cd "$ROOT/console/web"
node --test test/real.test.mjs || { tail -n 40 "$WORK/controller.log" >&2; fail "the console's browser tests"; }
pass "console: live view, pixels, stop and refusal against the real controller"
