// `network:` → v1::NetworkFault: exactly one kind (latency, loss, blackhole, reject, partition,
// bandwidth) and an optional `match:`. The rules are common/faultspec/network_fault's; this file
// reads YAML (and resolves `partition.to`, which names the experiment's target groups).
#include <cstdlib>

#include "controller/experiment/kinds/kind_reader.h"

namespace faultline::experiment {
namespace {

using faultline::v1::NetworkFault;

void ReadPartition(KindReadContext& ctx, const MapField& k, const std::string& kpath) {
  YamlReader& y = ctx.yaml;
  Fault& fault = ctx.fault;
  // `partition: {}` cuts match.cidrs/hosts off; `partition: {to: [group, ...]}` (and optionally
  // `from: <this fault's target>`) cuts off the agents of other target groups.
  fault.spec.mutable_network()->mutable_partition();
  if (k.value.IsNull()) return;
  auto pf = y.Map(k.value, kpath, {"from", "to"});
  if (!pf) return;
  if (auto* v = YamlReader::Find(*pf, "from"); v && !v->IsNull()) {
    if (auto s = y.String(*v, kpath + ".from"); s && *s != fault.target) {
      y.Error(*v, kpath + ".from",
              "must be this fault's target " + Quoted(fault.target) + ", got " + Quoted(*s) +
                  " (the partition is applied on the target's agents)");
    }
  }
  if (auto* v = YamlReader::Find(*pf, "to"); v && !v->IsNull()) {
    std::vector<YAML::Node> items;
    if (v->IsSequence()) {
      for (const auto& item : *v) items.push_back(item);
    } else {
      items.push_back(*v);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string ipath =
          v->IsSequence() ? YamlReader::Index(kpath + ".to", i) : kpath + ".to";
      auto s = y.String(items[i], ipath);
      if (!s) continue;
      if (!ctx.target_names.count(*s)) {
        y.Error(items[i], ipath, "unknown target " + Quoted(*s) + " (not defined in targets)");
      } else if (*s == fault.target) {
        y.Error(items[i], ipath, "a target cannot be partitioned from itself");
      } else {
        fault.partition_peer_targets.push_back(*s);
      }
    }
  }
}

void ReadLatency(KindReadContext& ctx, const MapField& k, const std::string& kpath) {
  YamlReader& y = ctx.yaml;
  auto lf = y.Map(k.value, kpath, {"delay", "jitter", "distribution", "correlation", "reorder"});
  if (!lf) return;
  auto* l = ctx.fault.spec.mutable_network()->mutable_latency();
  const std::string pp = "network.latency";
  if (auto* v = y.Need(*lf, k.value, kpath, "delay")) {
    ctx.Note(pp + ".delay_us", *v, kpath + ".delay");
    if (auto d = y.Dur(*v, kpath + ".delay", true)) {
      l->set_delay_us(ClampedCount<std::chrono::microseconds>(*d));
    }
  }
  if (auto* v = ctx.Field(*lf, k.value, kpath, "jitter", pp + ".jitter_us")) {
    if (auto d = y.Dur(*v, kpath + ".jitter", false)) {
      l->set_jitter_us(ClampedCount<std::chrono::microseconds>(*d));
    }
  }
  if (auto* v = ctx.Field(*lf, k.value, kpath, "distribution", pp + ".distribution")) {
    if (auto s = y.String(*v, kpath + ".distribution")) {
      if (*s == "uniform") {
        l->set_distribution(NetworkFault::Latency::UNIFORM);
      } else if (*s == "normal") {
        l->set_distribution(NetworkFault::Latency::NORMAL);
      } else {
        y.Error(*v, kpath + ".distribution", "expected uniform or normal, got " + Quoted(*s));
      }
    }
  }
  if (auto* v = ctx.Field(*lf, k.value, kpath, "correlation", pp + ".correlation_percent")) {
    if (auto c = y.Int(*v, kpath + ".correlation", 0, 4294967295LL)) {
      l->set_correlation_percent(static_cast<uint32_t>(*c));
    }
  }
  if (auto* v = ctx.Field(*lf, k.value, kpath, "reorder", pp + ".reorder")) {
    if (auto s = y.String(*v, kpath + ".reorder")) {
      if (*s == "true" || *s == "false") {
        l->set_reorder(*s == "true");
      } else {
        y.Error(*v, kpath + ".reorder", "expected true or false, got " + Quoted(*s));
      }
    }
  }
}

void ReadLoss(KindReadContext& ctx, const MapField& k, const std::string& kpath) {
  YamlReader& y = ctx.yaml;
  auto lf = y.Map(k.value, kpath, {"percent", "correlation"});
  if (!lf) return;
  auto* loss = ctx.fault.spec.mutable_network()->mutable_loss();
  if (auto* v = ctx.Field(*lf, k.value, kpath, "correlation", "network.loss.correlation_percent")) {
    if (auto c = y.Int(*v, kpath + ".correlation", 0, 4294967295LL)) {
      loss->set_correlation_percent(static_cast<uint32_t>(*c));
    }
  }
  if (auto* v = y.Need(*lf, k.value, kpath, "percent")) {
    ctx.Note("network.loss.percent", *v, kpath + ".percent");
    if (auto s = y.String(*v, kpath + ".percent")) {
      char* end = nullptr;
      double p = std::strtod(s->c_str(), &end);
      if (s->empty() || end != s->c_str() + s->size()) {
        y.Error(*v, kpath + ".percent", "expected a number from 0.01 to 100, got " + Quoted(*s));
      } else {
        loss->set_percent(p);
      }
    }
  }
}

void ReadBandwidth(KindReadContext& ctx, const MapField& k, const std::string& kpath) {
  YamlReader& y = ctx.yaml;
  auto bf = y.Map(k.value, kpath, {"rate", "burst"});
  if (!bf) return;
  auto* b = ctx.fault.spec.mutable_network()->mutable_bandwidth();
  if (auto* v = y.Need(*bf, k.value, kpath, "rate")) {
    ctx.Note("network.bandwidth.rate_bytes_per_second", *v, kpath + ".rate");
    if (auto s = y.String(*v, kpath + ".rate")) {
      if (auto rate = ParseRate(*s)) {
        b->set_rate_bytes_per_second(*rate);
      } else {
        y.Error(*v, kpath + ".rate",
                "expected a rate such as 1mbit, 500kbit or 2mbps (= bytes/s), got " + Quoted(*s));
      }
    }
  }
  if (auto* v = ctx.Field(*bf, k.value, kpath, "burst", "network.bandwidth.burst_bytes")) {
    if (auto s = y.String(*v, kpath + ".burst")) {
      if (auto burst = ParseBytes(*s)) {
        b->set_burst_bytes(static_cast<uint32_t>(std::min<uint64_t>(*burst, UINT32_MAX)));
      } else {
        y.Error(*v, kpath + ".burst", "expected a size such as 32kb, got " + Quoted(*s));
      }
    }
  }
}

}  // namespace

void ReadNetworkFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path) {
  YamlReader& y = ctx.yaml;
  auto fields =
      y.Map(n, path, {"latency", "loss", "blackhole", "reject", "partition", "bandwidth", "match"});
  if (!fields) return;
  NetworkFault* net = ctx.fault.spec.mutable_network();
  const MapField* kind = y.OneKind(
      *fields, n, path, {"latency", "loss", "blackhole", "reject", "partition", "bandwidth"},
      "a network fault",
      "a network fault needs one kind: latency, loss, blackhole, reject, partition or bandwidth");
  if (kind == nullptr) return;
  const MapField& k = *kind;
  const std::string kpath = YamlReader::Sub(path, k.key);
  ctx.Note("network." + k.key, k.value, kpath);
  // Parameterless kinds accept `blackhole: {}` or a bare `blackhole:`.
  auto no_params = [&](const YAML::Node& v) {
    if (!v.IsNull()) y.Map(v, kpath, {});
  };
  if (k.key == "blackhole") {
    no_params(k.value);
    net->mutable_blackhole();
  } else if (k.key == "reject") {
    no_params(k.value);
    net->mutable_reject();
  } else if (k.key == "partition") {
    ReadPartition(ctx, k, kpath);
  } else if (k.key == "latency") {
    ReadLatency(ctx, k, kpath);
  } else if (k.key == "loss") {
    ReadLoss(ctx, k, kpath);
  } else if (k.key == "bandwidth") {
    ReadBandwidth(ctx, k, kpath);
  }
  if (auto* v = ctx.Field(*fields, n, path, "match", "network.match")) {
    ReadNetworkSelector(ctx, *v, path + ".match", "network.match", net->mutable_match());
  }
}

}  // namespace faultline::experiment
