#include "common/faultspec/dependency/dependency_fault.h"

#include <algorithm>

#include "common/faultspec/peer_rules.h"

namespace faultline::faultspec {
namespace {

using Toxic = v1::DependencyFault::Toxic;

bool IsHttpMethod(const std::string& s) {
  if (s.empty() || s.size() > kMaxHttpMethodLength) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

void ValidateToxic(const Toxic& t, const std::string& f, FieldProblems* problems) {
  if (!Toxic::Direction_IsValid(t.direction())) {
    problems->Add(f + ".direction", "must be upstream or downstream");
  }
  if (t.has_toxicity() && !(t.toxicity() > 0.0 && t.toxicity() <= 1.0)) {
    problems->Add(f + ".toxicity", "must be a share in (0, 1]");
  }
  switch (t.kind_case()) {
    case Toxic::kLatency:
      if (t.latency().latency_us() < 1 || t.latency().latency_us() > kMaxToxicDelayUs) {
        problems->Add(f + ".latency.latency_us", "must be from 1us to 60s");
      }
      if (t.latency().jitter_us() > t.latency().latency_us()) {
        problems->Add(f + ".latency.jitter_us", "must not exceed the latency");
      }
      break;
    case Toxic::kBandwidth:
      if (t.bandwidth().rate_bytes_per_second() < 1) {
        problems->Add(f + ".bandwidth.rate_bytes_per_second", "must be at least 1 byte/s");
      }
      break;
    case Toxic::kResetPeer:
      if (t.reset_peer().timeout_ms() > kMaxDependencyDelayMs) {
        problems->Add(f + ".reset_peer.timeout_ms", "at most 60s");
      }
      break;
    case Toxic::kTimeout:
      if (t.timeout().timeout_ms() > kMaxDependencyDelayMs) {
        problems->Add(f + ".timeout.timeout_ms", "at most 60s");
      }
      break;
    case Toxic::kSlowClose:
      if (t.slow_close().delay_ms() < 1 || t.slow_close().delay_ms() > kMaxDependencyDelayMs) {
        problems->Add(f + ".slow_close.delay_ms", "must be from 1ms to 60s");
      }
      break;
    case Toxic::kLimitData:
      if (t.limit_data().bytes() < 1) {
        problems->Add(f + ".limit_data.bytes", "must be at least 1 byte");
      }
      break;
    case Toxic::kSlicer:
      if (t.slicer().average_size() < 1 || t.slicer().average_size() > kMaxSlicerSize) {
        problems->Add(f + ".slicer.average_size", "must be 1 to 1048576 bytes");
      } else if (t.slicer().size_variation() >= t.slicer().average_size()) {
        problems->Add(f + ".slicer.size_variation", "must be smaller than average_size");
      }
      if (t.slicer().delay_us() > kMaxSlicerDelayUs) {
        problems->Add(f + ".slicer.delay_us", "at most 1s");
      }
      break;
    case Toxic::KIND_NOT_SET:
      problems->Add(f,
                    "a toxic needs one kind: latency, bandwidth, reset_peer, timeout, slow_close, "
                    "limit_data or slicer");
      break;
  }
}

void ValidateHttp(const v1::DependencyFault::Http& h, const std::string& f,
                  FieldProblems* problems) {
  if (h.aborts_size() > kMaxHttpAborts) {
    problems->Add(f + ".aborts", "at most 8 aborts, got " + std::to_string(h.aborts_size()));
  } else {
    double total = 0.0;
    for (int i = 0; i < h.aborts_size(); ++i) {
      const auto& a = h.aborts(i);
      const std::string af = Indexed(f + ".aborts", i);
      if (a.status() < 400 || a.status() > 599) problems->Add(af + ".status", "must be 400-599");
      if (!(a.percent() > 0.0 && a.percent() <= 100.0)) {
        problems->Add(af + ".percent", "must be in (0, 100]");
      } else {
        total += a.percent();
        if (total > 100.0 + 1e-9) {
          problems->Add(af + ".percent", "the aborts add up to more than 100%");
        }
      }
      if (a.body().size() > kMaxHttpAbortBody) problems->Add(af + ".body", "at most 4096 bytes");
    }
  }
  if (!(h.delay_percent() >= 0.0 && h.delay_percent() <= 100.0)) {
    problems->Add(f + ".delay_percent", "must be 0 to 100");
  }
  if (h.delay_ms() > kMaxDependencyDelayMs) problems->Add(f + ".delay_ms", "at most 60s");
  if ((h.delay_ms() > 0) != (h.delay_percent() > 0.0)) {
    problems->Add(f + ".delay_ms", "a delay needs both delay_ms and delay_percent");
  }
  if (h.aborts_size() == 0 && h.delay_ms() == 0 && h.delay_percent() == 0.0) {
    problems->Add(f, "needs an abort (status, percent) or a delay (delay_ms, delay_percent)");
  }
  if (h.methods_size() > kMaxHttpMethods) {
    problems->Add(f + ".methods", "at most 16 methods, got " + std::to_string(h.methods_size()));
  } else {
    for (int i = 0; i < h.methods_size(); ++i) {
      if (!IsHttpMethod(h.methods(i))) {
        problems->Add(Indexed(f + ".methods", i),
                      "must be an upper-case HTTP method such as GET (at most 32 letters)");
      }
    }
  }
  const std::string& p = h.path_prefix();
  if (p.size() > kMaxHttpPathPrefix || (!p.empty() && p[0] != '/') ||
      std::any_of(p.begin(), p.end(), [](char c) { return c <= ' ' || c == 0x7f; })) {
    problems->Add(f + ".path_prefix",
                  "must start with '/' and hold no spaces or control characters (at most 1024 "
                  "bytes)");
  }
}

}  // namespace

void ValidateDependencyFault(const v1::DependencyFault& fault, const std::string& path,
                             FieldProblems* problems) {
  using v1::NetworkSelector;
  const NetworkSelector& m = fault.match();
  const std::string mp = path + ".match";
  if (m.direction() != NetworkSelector::DIRECTION_UNSPECIFIED) {
    problems->Add(mp + ".direction", "not used: the proxy takes outbound connections");
  }
  if (m.protocol() != NetworkSelector::PROTOCOL_ANY && m.protocol() != NetworkSelector::TCP) {
    problems->Add(mp + ".protocol", "the fault proxy carries TCP only");
  }
  if (m.local_ports_size() > 0) problems->Add(mp + ".local_ports", "not used by the proxy");
  if (m.remote_ports_size() < 1) {
    problems->Add(mp + ".remote_ports", "name the dependency's port(s): 1 to 64 ports");
  }
  ValidateSelectorLists(m, mp, problems);
  if (fault.toxics_size() > kMaxToxics) {
    problems->Add(path + ".toxics",
                  "at most 16 toxics, got " + std::to_string(fault.toxics_size()));
  } else {
    for (int i = 0; i < fault.toxics_size(); ++i) {
      ValidateToxic(fault.toxics(i), Indexed(path + ".toxics", i), problems);
    }
  }
  if (fault.has_http()) ValidateHttp(fault.http(), path + ".http", problems);
}

}  // namespace faultline::faultspec
