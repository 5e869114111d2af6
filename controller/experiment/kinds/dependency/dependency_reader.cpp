// `dependency:` → v1::DependencyFault: a match (the dependency: hosts/cidrs and remote_ports),
// toxics and/or http. The rules are common/faultspec/dependency_fault's; this file reads YAML.
#include <iterator>

#include "controller/experiment/kinds/kind_reader.h"

namespace faultline::experiment {
namespace {

using Toxic = faultline::v1::DependencyFault::Toxic;

void ReadToxic(KindReadContext& ctx, const YAML::Node& n, const std::string& path,
               const std::string& pp, Toxic* t) {
  YamlReader& y = ctx.yaml;
  static constexpr std::string_view kKinds[] = {"latency",    "bandwidth",  "reset_peer", "timeout",
                                                "slow_close", "limit_data", "slicer"};
  ctx.Note(pp, n, path);
  auto fields = y.Map(n, path,
                      {"direction", "toxicity", "latency", "bandwidth", "reset_peer", "timeout",
                       "slow_close", "limit_data", "slicer"});
  if (!fields) return;
  if (auto* v = ctx.Field(*fields, n, path, "direction", pp + ".direction")) {
    if (auto s = y.String(*v, path + ".direction")) {
      if (*s == "upstream") {
        t->set_direction(Toxic::UPSTREAM);
      } else if (*s == "downstream") {
        t->set_direction(Toxic::DOWNSTREAM);
      } else {
        y.Error(*v, path + ".direction",
                "expected upstream (to the dependency) or downstream (to the client), got " +
                    Quoted(*s));
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "toxicity", pp + ".toxicity")) {
    if (auto p = y.Share(*v, path + ".toxicity")) t->set_toxicity(*p);
  }
  const MapField* kind =
      y.OneKind(*fields, n, path, {std::begin(kKinds), std::end(kKinds)}, "a toxic",
                "a toxic needs one kind: latency, bandwidth, reset_peer, "
                "timeout, slow_close, limit_data or slicer");
  if (kind == nullptr) return;
  const MapField& k = *kind;
  const std::string kpath = YamlReader::Sub(path, k.key);
  const std::string kp = pp + "." + k.key;
  ctx.Note(kp, k.value, kpath);
  const YAML::Node empty(YAML::NodeType::Map);
  const YAML::Node& body = k.value.IsNull() ? empty : k.value;
  if (k.key == "latency") {
    auto lf = y.Map(body, kpath, {"delay", "jitter"});
    if (!lf) return;
    auto* l = t->mutable_latency();
    if (auto* v = y.Need(*lf, k.value, kpath, "delay")) {
      ctx.Note(kp + ".latency_us", *v, kpath + ".delay");
      if (auto d = y.Dur(*v, kpath + ".delay", true)) {
        l->set_latency_us(ClampedCount<std::chrono::microseconds>(*d));
      }
    }
    if (auto* v = ctx.Field(*lf, body, kpath, "jitter", kp + ".jitter_us")) {
      if (auto d = y.Dur(*v, kpath + ".jitter", false)) {
        l->set_jitter_us(ClampedCount<std::chrono::microseconds>(*d));
      }
    }
  } else if (k.key == "bandwidth") {
    auto bf = y.Map(body, kpath, {"rate"});
    if (!bf) return;
    if (auto* v = y.Need(*bf, k.value, kpath, "rate")) {
      ctx.Note(kp + ".rate_bytes_per_second", *v, kpath + ".rate");
      if (auto s = y.String(*v, kpath + ".rate")) {
        if (auto rate = ParseRate(*s)) {
          t->mutable_bandwidth()->set_rate_bytes_per_second(*rate);
        } else {
          y.Error(
              *v, kpath + ".rate",
              "expected a rate such as 1mbit, 500kbit or 100kbps (= bytes/s), got " + Quoted(*s));
        }
      }
    }
  } else if (k.key == "reset_peer" || k.key == "timeout") {
    auto rf = y.Map(body, kpath, {"after"});
    if (!rf) return;
    uint32_t ms = 0;
    if (auto* v = ctx.Field(*rf, body, kpath, "after", kp + ".timeout_ms")) {
      if (auto m = y.Millis(*v, kpath + ".after", false)) ms = *m;
    }
    if (k.key == "reset_peer") {
      t->mutable_reset_peer()->set_timeout_ms(ms);
    } else {
      t->mutable_timeout()->set_timeout_ms(ms);
    }
  } else if (k.key == "slow_close") {
    auto sf = y.Map(body, kpath, {"delay"});
    if (!sf) return;
    if (auto* v = y.Need(*sf, k.value, kpath, "delay")) {
      ctx.Note(kp + ".delay_ms", *v, kpath + ".delay");
      if (auto m = y.Millis(*v, kpath + ".delay", true)) t->mutable_slow_close()->set_delay_ms(*m);
    }
  } else if (k.key == "limit_data") {
    auto lf = y.Map(body, kpath, {"bytes"});
    if (!lf) return;
    if (auto* v = y.Need(*lf, k.value, kpath, "bytes")) {
      ctx.Note(kp + ".bytes", *v, kpath + ".bytes");
      if (auto s = y.String(*v, kpath + ".bytes")) {
        if (auto bytes = ParseBytes(*s)) {
          t->mutable_limit_data()->set_bytes(*bytes);
        } else {
          y.Error(*v, kpath + ".bytes", "expected a size such as 10kb, got " + Quoted(*s));
        }
      }
    }
  } else if (k.key == "slicer") {
    auto sf = y.Map(body, kpath, {"average_size", "size_variation", "delay"});
    if (!sf) return;
    auto* sl = t->mutable_slicer();
    if (auto* v = y.Need(*sf, k.value, kpath, "average_size")) {
      ctx.Note(kp + ".average_size", *v, kpath + ".average_size");
      if (auto a = y.Int(*v, kpath + ".average_size", 0, 4294967295LL)) {
        sl->set_average_size(static_cast<uint32_t>(*a));
      }
    }
    if (auto* v = ctx.Field(*sf, body, kpath, "size_variation", kp + ".size_variation")) {
      if (auto a = y.Int(*v, kpath + ".size_variation", 0, 4294967295LL)) {
        sl->set_size_variation(static_cast<uint32_t>(*a));
      }
    }
    if (auto* v = ctx.Field(*sf, body, kpath, "delay", kp + ".delay_us")) {
      if (auto d = y.Dur(*v, kpath + ".delay", false)) {
        sl->set_delay_us(ClampedCount<std::chrono::microseconds>(*d));
      }
    }
  }
}

// `http:` aborts (status, body, percent), a delay (delay, percent), methods, path_prefix.
void ReadHttp(KindReadContext& ctx, const YAML::Node& n, const std::string& path,
              faultline::v1::DependencyFault::Http* h) {
  YamlReader& y = ctx.yaml;
  const std::string pp = "dependency.http";
  ctx.Note(pp, n, path);
  auto fields = y.Map(n, path, {"abort", "delay", "methods", "path_prefix"});
  if (!fields) return;
  if (auto* v = ctx.Field(*fields, n, path, "abort", pp + ".aborts")) {
    const std::string apath = path + ".abort";
    // One abort as a mapping, or several as a list.
    std::vector<YAML::Node> items;
    if (v->IsSequence()) {
      for (size_t i = 0; i < v->size(); ++i) items.push_back((*v)[i]);
    } else {
      items.push_back(*v);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string ipath = v->IsSequence() ? YamlReader::Index(apath, i) : apath;
      const std::string ap = pp + ".aborts[" + std::to_string(h->aborts_size()) + "]";
      auto af = y.Map(items[i], ipath, {"status", "body", "percent"});
      if (!af) continue;
      ctx.Note(ap, items[i], ipath);
      auto* a = h->add_aborts();
      if (auto* s = y.Need(*af, items[i], ipath, "status")) {
        ctx.Note(ap + ".status", *s, ipath + ".status");
        if (auto code = y.Int(*s, ipath + ".status", 0, 4294967295LL)) {
          a->set_status(static_cast<uint32_t>(*code));
        }
      }
      if (auto* b = ctx.Field(*af, items[i], ipath, "body", ap + ".body")) {
        if (auto body = y.String(*b, ipath + ".body")) a->set_body(*body);
      }
      if (auto* p = y.Need(*af, items[i], ipath, "percent")) {
        ctx.Note(ap + ".percent", *p, ipath + ".percent");
        if (auto share = y.Share(*p, ipath + ".percent")) a->set_percent(*share * 100.0);
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "delay", pp + ".delay_ms")) {
    const std::string dpath = path + ".delay";
    auto df = y.Map(*v, dpath, {"delay", "percent"});
    if (df) {
      if (auto* d = y.Need(*df, *v, dpath, "delay")) {
        ctx.Note(pp + ".delay_ms", *d, dpath + ".delay");
        if (auto ms = y.Millis(*d, dpath + ".delay", true)) h->set_delay_ms(*ms);
      }
      h->set_delay_percent(100.0);
      if (auto* p = ctx.Field(*df, *v, dpath, "percent", pp + ".delay_percent")) {
        if (auto share = y.Share(*p, dpath + ".percent")) h->set_delay_percent(*share * 100.0);
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "methods", pp + ".methods")) {
    ctx.Strings(*v, path + ".methods", pp + ".methods", "HTTP methods", h->mutable_methods());
  }
  if (auto* v = ctx.Field(*fields, n, path, "path_prefix", pp + ".path_prefix")) {
    if (auto s = y.String(*v, path + ".path_prefix")) h->set_path_prefix(*s);
  }
}

}  // namespace

void ReadDependencyFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path) {
  YamlReader& y = ctx.yaml;
  auto fields = y.Map(n, path, {"match", "toxics", "http"});
  if (!fields) return;
  faultline::v1::DependencyFault* dep = ctx.fault.spec.mutable_dependency();
  if (auto* v = y.Need(*fields, n, path, "match")) {
    ctx.Note("dependency.match", *v, path + ".match");
    ReadNetworkSelector(ctx, *v, path + ".match", "dependency.match", dep->mutable_match());
  }
  if (auto* v = ctx.Field(*fields, n, path, "toxics", "dependency.toxics")) {
    const std::string tpath = path + ".toxics";
    if (!v->IsSequence()) {
      y.Error(*v, tpath, "expected a list of toxics, got " + KindOf(*v));
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        const std::string tp = "dependency.toxics[" + std::to_string(dep->toxics_size()) + "]";
        ReadToxic(ctx, (*v)[i], YamlReader::Index(tpath, i), tp, dep->add_toxics());
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "http", "dependency.http")) {
    ReadHttp(ctx, *v, path + ".http", dep->mutable_http());
  }
  // The agent accepts a plain pass-through proxy (no toxic, no http: a benchmark's baseline);
  // an experiment that injects nothing is a mistake.
  if (!YamlReader::Find(*fields, "toxics") && !YamlReader::Find(*fields, "http")) {
    y.Error(n, path, "a dependency fault needs toxics or an http section");
  }
}

}  // namespace faultline::experiment
