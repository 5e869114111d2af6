# shellcheck shell=bash
# Helpers of every integration test (fail/pass, await, fault tables) and scratch hosts and
# resolvers for tests that build their own namespaces instead of (or beside) the sandbox's.
# Sourced by lib.sh, and directly by tests that do not use the sandbox and so do not take its
# lock. Defines functions only.

# Shared by every integration test: a failure ends the test with its message.
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# Polls (every 50 ms) until CMD succeeds or the deadline (seconds) passes.
await() {  # await SECONDS CMD...
  local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@"; do
    [ "$(date +%s%N)" -lt "$end" ] || return 1
    sleep 0.05
  done
}

# Names of faultline_* nft tables in a namespace.
fault_tables() { ip netns exec "$1" nft list tables 2>/dev/null | awk '$3 ~ /^faultline_/ {print $3}'; }
has_fault_table() { [ -n "$(fault_tables "$1")" ]; }
no_fault_table() { [ -z "$(fault_tables "$1")" ]; }

# A scratch host for tests that build their own hosts instead of the sandbox's: namespace HOST
# whose eth0 (HOST_IP/30) is veth-paired with ROOT_IF (ROOT_IP/30) in the root namespace. A
# leftover of an earlier run with the same names is removed first. The caller deletes both.
scratch_host() {  # scratch_host HOST ROOT_IF ROOT_IP HOST_IP
  local h=$1 r=$2
  ip netns del "$h" 2>/dev/null || true
  ip link del "$r" 2>/dev/null || true
  ip netns add "$h"
  ip link add "$r" type veth peer name eth0 netns "$h"
  ip addr add "$3/30" dev "$r"
  ip link set "$r" up
  ip -n "$h" addr add "$4/30" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" link set lo up
}

# A resolver of namespace NS alone: dnsmasq on NS's 127.0.0.1:53 answering from HOSTS_FILE with
# TTL 0, and NS's resolv.conf pointing at it (`ip netns exec` binds /etc/netns/NS/resolv.conf;
# the caller removes /etc/netns/NS). Sets DNSMASQ to its pid: after changing HOSTS_FILE,
# `kill -HUP $DNSMASQ` makes the change visible at once.
scratch_dnsmasq() {  # scratch_dnsmasq NS HOSTS_FILE LOG
  mkdir -p "/etc/netns/$1"
  echo "nameserver 127.0.0.1" >"/etc/netns/$1/resolv.conf"
  chmod a+rx "$(dirname "$2")"; chmod a+r "$2"  # dnsmasq reads it as nobody
  ip netns exec "$1" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file \
    --listen-address=127.0.0.1 --bind-interfaces --port=53 --no-resolv --no-hosts \
    --addn-hosts="$2" --local-ttl=0 --user=nobody --log-facility=- >"$3" 2>&1 &
  # shellcheck disable=SC2034  # the caller's handle on the resolver
  DNSMASQ=$!
}

# A host whose resolver never answers: namespace NS with lo and a veth pair bh0/bh1 inside it,
# bh0 holding 10.99.77.1/24 and a permanent neighbour entry sending 10.99.77.53 to a MAC address
# nobody has (bh1 drops such frames), and NS's resolv.conf pointing at 10.99.77.53: every query
# leaves, nothing answers, no error comes back, and each lookup waits for the resolver's timeouts.
# A leftover of an earlier run is removed first; the caller removes NS and /etc/netns/NS.
blackholed_resolver_host() {  # blackholed_resolver_host NS
  ip netns del "$1" 2>/dev/null || true
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip -n "$1" link add bh0 type veth peer name bh1
  ip -n "$1" addr add 10.99.77.1/24 dev bh0
  ip -n "$1" link set bh0 up
  ip -n "$1" link set bh1 up
  ip -n "$1" neigh add 10.99.77.53 lladdr 02:00:00:00:00:53 dev bh0 nud permanent
  mkdir -p "/etc/netns/$1"
  echo "nameserver 10.99.77.53" >"/etc/netns/$1/resolv.conf"
}

# An agent in namespace NS serving plaintext on its loopback (--insecure, allowed there), state in
# STATE_DIR, log in LOG. Sets AGENT_PID and AGENT_ADDR (HOST:PORT, reachable from inside NS) once
# it serves; fails the test if it does not within 20 s.
scratch_agent() {  # scratch_agent NS STATE_DIR LOG
  rm -f "$2.ready"
  ip netns exec "$1" "$BIN/faultline-agent" --insecure --listen 127.0.0.1:0 --name "$1" \
    --state-dir "$2" --ready-file "$2.ready" >"$3" 2>&1 &
  # shellcheck disable=SC2034  # read by the tests that source this file
  AGENT_PID=$!
  await 20 test -s "$2.ready" || { cat "$3" >&2; fail "the agent in $1 did not start"; }
  # shellcheck disable=SC2034  # read by the tests that source this file
  AGENT_ADDR=$(cat "$2.ready")
}
