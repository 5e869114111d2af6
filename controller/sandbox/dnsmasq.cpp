#include <pwd.h>

#include "controller/sandbox/sandbox_internal.h"
// ldns after the C++ library headers: its C headers' definitions break <optional>'s operators.
#include <ldns/ldns.h>

namespace faultline::sandbox::internal {

std::vector<std::string> DnsmasqArgv(const std::string& dnsmasq, int container_replicas) {
  const SandboxHost& dns = *FindSandboxHostByRole("dns");
  std::vector<std::string> dnsmasq_argv = {
      dnsmasq,
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--pid-file",  // no value: no pid file of its own; ours is in pids/
      "--listen-address=" + dns.address,
      "--bind-interfaces",
      "--port=53",
      "--no-resolv",
      "--no-hosts",
      "--no-poll",
      "--local=/" + Str(kDomain) + "/",
      "--local-ttl=0",
      "--log-queries",
      "--log-facility=-",
  };
  for (const auto& h : SandboxHosts()) {
    if (h.role == "db") {
      dnsmasq_argv.push_back("--host-record=" + DynamoDbEndpointName(h.region) + "," + h.address);
    }
  }
  // --containers: the orders containers' endpoints, answered with kv replica 1 of each region.
  for (const auto& c : SandboxContainers(container_replicas)) {
    if (c.service == "kv" && c.name.ends_with("-1")) {
      dnsmasq_argv.push_back("--host-record=" + ContainerEndpointName(c.region) + "," + c.address);
    }
  }
  // A CNAME to the west endpoint, for DNS faults that follow CNAME chains.
  dnsmasq_argv.push_back("--cname=dynamodb-alias." + Str(kDomain) + "," +
                         DynamoDbEndpointName("us-west-2"));
  // Debian's dnsmasq drops privileges to the user "dnsmasq", which only the full dnsmasq
  // package creates; dnsmasq-base alone needs another unprivileged user.
  if (getpwnam("dnsmasq") == nullptr) dnsmasq_argv.push_back("--user=nobody");
  return dnsmasq_argv;
}

// Asks dnsmasq (from the root namespace, over the bridge) for the east endpoint and checks the
// answer, so "ready" means it serves the sandbox's records, not merely that it is running.
bool DnsServes(const std::string& server, const std::string& name, const std::string& want,
               std::string* why) {
  ldns_resolver* res = ldns_resolver_new();
  if (res == nullptr) {
    *why = "ldns_resolver_new failed";
    return false;
  }
  ldns_rdf* ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, server.c_str());
  ldns_resolver_push_nameserver(res, ns);
  ldns_rdf_deep_free(ns);
  ldns_resolver_set_retry(res, 1);
  ldns_resolver_set_timeout(res, timeval{0, 300000});
  ldns_rdf* qname = ldns_dname_new_frm_str(name.c_str());
  ldns_pkt* pkt = nullptr;
  ldns_status s =
      ldns_resolver_query_status(&pkt, res, qname, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
  bool ok = false;
  if (s != LDNS_STATUS_OK || pkt == nullptr) {
    *why = std::string("no answer: ") + ldns_get_errorstr_by_id(s);
  } else if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR) {
    *why = "rcode " + std::to_string(ldns_pkt_get_rcode(pkt));
  } else {
    ldns_rr_list* rrs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_A, LDNS_SECTION_ANSWER);
    for (size_t i = 0; rrs != nullptr && i < ldns_rr_list_rr_count(rrs); ++i) {
      char* text = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(rrs, i), 0));
      if (text != nullptr && want == text) ok = true;
      free(text);
    }
    if (rrs != nullptr) ldns_rr_list_deep_free(rrs);
    if (!ok) *why = "answer does not contain " + want;
  }
  if (pkt != nullptr) ldns_pkt_free(pkt);
  ldns_rdf_deep_free(qname);
  ldns_resolver_deep_free(res);
  return ok;
}

}  // namespace faultline::sandbox::internal
