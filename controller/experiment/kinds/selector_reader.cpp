// `match:` → v1::NetworkSelector, shared by the network and dependency readers. The rules
// (address syntax, counts, port range, interval) are common/faultspec/peer_rules'.
#include "controller/experiment/kinds/kind_reader.h"

namespace faultline::experiment {
namespace {

void Ports(KindReadContext& ctx, const YAML::Node& n, const std::string& path,
           const std::string& proto_path, google::protobuf::RepeatedField<uint32_t>* out) {
  YamlReader& y = ctx.yaml;
  ctx.Note(proto_path, n, path);
  if (!n.IsSequence()) {
    y.Error(n, path, "expected a list of ports, got " + KindOf(n));
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string ipath = YamlReader::Index(path, i);
    if (auto p = y.Int(n[i], ipath, 0, 4294967295LL)) {
      ctx.Note(proto_path + "[" + std::to_string(out->size()) + "]", n[i], ipath);
      out->Add(static_cast<uint32_t>(*p));
    }
  }
}

}  // namespace

void ReadNetworkSelector(KindReadContext& ctx, const YAML::Node& n, const std::string& path,
                         const std::string& pp, faultline::v1::NetworkSelector* m) {
  YamlReader& y = ctx.yaml;
  auto fields = y.Map(n, path,
                      {"direction", "protocol", "cidrs", "hosts", "remote_ports", "local_ports",
                       "exclude", "resolve_interval"});
  if (!fields) return;
  using Sel = faultline::v1::NetworkSelector;
  if (auto* v = ctx.Field(*fields, n, path, "direction", pp + ".direction")) {
    if (auto s = y.String(*v, path + ".direction")) {
      if (*s == "egress") {
        m->set_direction(Sel::EGRESS);
      } else if (*s == "ingress") {
        m->set_direction(Sel::INGRESS);
      } else if (*s == "both") {
        m->set_direction(Sel::BOTH);
      } else {
        y.Error(*v, path + ".direction", "expected egress, ingress or both, got " + Quoted(*s));
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "protocol", pp + ".protocol")) {
    if (auto s = y.String(*v, path + ".protocol")) {
      if (*s == "tcp") {
        m->set_protocol(Sel::TCP);
      } else if (*s == "udp") {
        m->set_protocol(Sel::UDP);
      } else if (*s == "icmp") {
        m->set_protocol(Sel::ICMP);
      } else if (*s == "any") {
        m->set_protocol(Sel::PROTOCOL_ANY);
      } else {
        y.Error(*v, path + ".protocol", "expected tcp, udp, icmp or any, got " + Quoted(*s));
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "cidrs", pp + ".cidrs")) {
    ctx.Strings(*v, path + ".cidrs", pp + ".cidrs", "addresses or CIDRs", m->mutable_cidrs());
  }
  if (auto* v = ctx.Field(*fields, n, path, "exclude", pp + ".exclude_cidrs")) {
    ctx.Strings(*v, path + ".exclude", pp + ".exclude_cidrs", "addresses or CIDRs",
                m->mutable_exclude_cidrs());
  }
  if (auto* v = ctx.Field(*fields, n, path, "hosts", pp + ".hosts")) {
    ctx.Strings(*v, path + ".hosts", pp + ".hosts", "host names", m->mutable_hosts());
  }
  if (auto* v = ctx.Field(*fields, n, path, "remote_ports", pp + ".remote_ports")) {
    Ports(ctx, *v, path + ".remote_ports", pp + ".remote_ports", m->mutable_remote_ports());
  }
  if (auto* v = ctx.Field(*fields, n, path, "local_ports", pp + ".local_ports")) {
    Ports(ctx, *v, path + ".local_ports", pp + ".local_ports", m->mutable_local_ports());
  }
  if (auto* v = ctx.Field(*fields, n, path, "resolve_interval", pp + ".resolve_interval_ms")) {
    if (auto d = y.Dur(*v, path + ".resolve_interval", true)) {
      m->set_resolve_interval_ms(ClampedCount<std::chrono::milliseconds>(*d));
    }
  }
}

}  // namespace faultline::experiment
