// `dns:` → v1::DnsFault. The rules (name syntax, counts, which fields go with which mode, ranges)
// are common/faultspec/dns_fault's; this file reads YAML.
#include <algorithm>
#include <cctype>
#include <utility>

#include "controller/experiment/kinds/kind_reader.h"

namespace faultline::experiment {

void ReadDnsFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path) {
  using faultline::v1::DnsFault;
  YamlReader& y = ctx.yaml;
  auto fields = y.Map(n, path,
                      {"domains", "mode", "match", "record_types", "addresses", "ttl", "delay",
                       "jitter", "probability", "scope", "negative_ttl"});
  if (!fields) return;
  DnsFault* dns = ctx.fault.spec.mutable_dns();
  if (auto* v = y.Need(*fields, n, path, "domains")) {
    ctx.Strings(*v, path + ".domains", "dns.domains", "DNS names", dns->mutable_domains());
  }
  if (auto* v = y.Need(*fields, n, path, "mode")) {
    ctx.Note("dns.mode", *v, path + ".mode");
    if (auto s = y.String(*v, path + ".mode")) {
      static const std::vector<std::pair<std::string, DnsFault::Mode>> kModes = {
          {"drop", DnsFault::DROP},         {"nxdomain", DnsFault::NXDOMAIN},
          {"servfail", DnsFault::SERVFAIL}, {"nodata", DnsFault::NODATA},
          {"refused", DnsFault::REFUSED},   {"spoof", DnsFault::SPOOF},
          {"delay", DnsFault::DELAY},
      };
      auto it =
          std::find_if(kModes.begin(), kModes.end(), [&](const auto& m) { return m.first == *s; });
      if (it == kModes.end()) {
        y.Error(*v, path + ".mode",
                "unknown DNS fault mode " + Quoted(*s) +
                    " (expected drop, nxdomain, servfail, nodata, refused, spoof or delay)");
      } else {
        dns->set_mode(it->second);
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "match", "dns.match")) {
    if (auto s = y.String(*v, path + ".match")) {
      if (*s == "exact") {
        dns->set_match(DnsFault::AS_WRITTEN);
      } else if (*s == "suffix") {
        dns->set_match(DnsFault::SUFFIX);
      } else {
        y.Error(*v, path + ".match",
                "unknown match " + Quoted(*s) +
                    " (expected exact: names as written, '*.x' for subdomains of x; or suffix: "
                    "each name and all its subdomains)");
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "record_types", "dns.record_types")) {
    const std::string tpath = path + ".record_types";
    if (!v->IsSequence() || v->size() == 0) {
      y.Error(*v, tpath, "expected a non-empty list of record types, e.g. [AAAA]");
    } else if (ctx.Strings(*v, tpath, "dns.record_types", "record types",
                           dns->mutable_record_types())) {
      // Record types are stored upper-case, as the agent names them.
      for (auto& t : *dns->mutable_record_types()) {
        for (auto& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "addresses", "dns.spoof_addresses")) {
    ctx.Strings(*v, path + ".addresses", "dns.spoof_addresses", "IPv4/IPv6 addresses",
                dns->mutable_spoof_addresses());
  }
  if (auto* v = ctx.Field(*fields, n, path, "ttl", "dns.spoof_ttl_s")) {
    if (auto d = y.Dur(*v, path + ".ttl", true)) {
      dns->set_spoof_ttl_s(std::max<uint32_t>(1, ClampedCount<std::chrono::seconds>(*d)));
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "negative_ttl", "dns.negative_ttl_s")) {
    // A DNS TTL is whole seconds; rounding a "1500ms" silently would change the measurement.
    if (auto d = y.Dur(*v, path + ".negative_ttl", false)) {
      if (*d % std::chrono::seconds(1) != Duration::zero()) {
        y.Error(*v, path + ".negative_ttl", "must be whole seconds (a DNS TTL), e.g. 30s");
      } else {
        dns->set_negative_ttl_s(ClampedCount<std::chrono::seconds>(*d));
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "delay", "dns.delay_ms")) {
    if (auto d = y.Dur(*v, path + ".delay", false)) {
      dns->set_delay_ms(ClampedCount<std::chrono::milliseconds>(*d));
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "jitter", "dns.jitter_ms")) {
    if (auto d = y.Dur(*v, path + ".jitter", false)) {
      dns->set_jitter_ms(ClampedCount<std::chrono::milliseconds>(*d));
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "probability", "dns.probability")) {
    if (auto p = y.Share(*v, path + ".probability")) dns->set_probability(*p);
  }
  if (auto* v = ctx.Field(*fields, n, path, "scope", "dns.cgroup")) {
    const std::string spath = path + ".scope";
    auto scope = y.Map(*v, spath, {"cgroup", "uid"});
    if (scope) {
      if (auto* c = ctx.Field(*scope, *v, spath, "cgroup", "dns.cgroup")) {
        if (auto s = y.String(*c, spath + ".cgroup")) dns->set_cgroup(*s);
      }
      if (auto* u = ctx.Field(*scope, *v, spath, "uid", "dns.uid")) {
        if (auto id = y.Int(*u, spath + ".uid", 0, 4294967295LL)) {
          dns->set_uid(static_cast<uint32_t>(*id));
        }
      }
      if (!YamlReader::Find(*scope, "cgroup") && !YamlReader::Find(*scope, "uid")) {
        y.Error(*v, spath, "needs cgroup or uid (or leave scope out for the whole host)");
      }
    }
  }
}

}  // namespace faultline::experiment
