# shellcheck shell=bash
# Shared by the DNS benchmarks (dns_bench.sh, dns_loop_bench.sh); source it, never run it.
# Expects APP and DNS (namespace names), NET (the first three octets of their /24: APP is .1,
# DNS .2, as UP), WORK (a scratch folder) and PIDS (an array) to be set by the caller.

# Kills what the benchmark started, deletes its namespaces and its scratch folder (the EXIT trap).
bench_dns_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$APP" 2>/dev/null || true
  ip netns del "$DNS" 2>/dev/null || true
  rm -rf "$WORK"
}

# The client namespace APP and the resolver namespace DNS, joined by a veth ($APP0 <-> $DNS0).
bench_dns_namespaces() {
  ip netns del "$APP" 2>/dev/null || true
  ip netns del "$DNS" 2>/dev/null || true
  ip netns add "$APP"
  ip netns add "$DNS"
  ip -n "$APP" link add "${APP}0" type veth peer name "${DNS}0" netns "$DNS"
  ip -n "$APP" addr add "$NET.1/24" dev "${APP}0"
  ip -n "$DNS" addr add "$NET.2/24" dev "${DNS}0"
  for ns in "$APP" "$DNS"; do ip -n "$ns" link set lo up; done
  ip -n "$APP" link set "${APP}0" up
  ip -n "$DNS" link set "${DNS}0" up
}

# Starts dnsmasq in DNS on $NET.2:53, authoritative for host1..50.bench.test (10.1.0.1..50) from
# memory, in the background (its pid is added to PIDS); writes their queries to $WORK/queries.
bench_dns_resolver() {
  local hosts=() i
  for i in $(seq 1 50); do echo "host$i.bench.test A"; done >"$WORK/queries"
  for i in $(seq 1 50); do hosts+=(--host-record="host$i.bench.test,10.1.0.$i"); done
  ip netns exec "$DNS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --port=53 --listen-address="$NET.2" --bind-interfaces --pid-file= --user=root "${hosts[@]}" \
    --cache-size=1000 2>"$WORK/up.log" &
  PIDS+=($!)
}
