#include "common/faultspec/network/network_fault.h"

#include "common/faultspec/peer_rules.h"

namespace faultline::faultspec {

void ValidateNetworkFault(const v1::NetworkFault& f, const std::string& path,
                          const NetworkValidationOptions& options, FieldProblems* problems) {
  using v1::NetworkFault;
  using v1::NetworkSelector;
  const NetworkSelector& m = f.match();
  switch (f.kind_case()) {
    case NetworkFault::KIND_NOT_SET:
      problems->Add(path,
                    "needs one kind: latency, loss, blackhole, reject, partition or bandwidth");
      break;
    case NetworkFault::kLatency: {
      const auto& l = f.latency();
      const std::string lp = path + ".latency";
      if (l.delay_us() < 1 || l.delay_us() > kMaxNetworkDelayUs) {
        problems->Add(lp + ".delay_us", "must be from 1us to 60s");
      }
      if (l.jitter_us() > l.delay_us()) {
        problems->Add(lp + ".jitter_us", "must not exceed the delay");
      }
      if (l.correlation_percent() > 100) {
        problems->Add(lp + ".correlation_percent", "must be 0 to 100 (percent)");
      }
      if (!NetworkFault::Latency::Distribution_IsValid(l.distribution())) {
        problems->Add(lp + ".distribution", "must be uniform or normal");
      }
      break;
    }
    case NetworkFault::kLoss: {
      const double p = f.loss().percent();
      if (!(p >= 0.01 && p <= 100.0)) {
        problems->Add(path + ".loss.percent", "must be from 0.01 to 100");
      }
      if (f.loss().correlation_percent() > 100) {
        problems->Add(path + ".loss.correlation_percent", "must be 0 to 100 (percent)");
      }
      break;
    }
    case NetworkFault::kPartition:
      if (m.cidrs_size() == 0 && m.hosts_size() == 0 && !options.partition_peers_added_later) {
        problems->Add(path + ".match",
                      "a partition needs the peers to cut off (match.cidrs or match.hosts)");
      }
      if (m.direction() == NetworkSelector::EGRESS || m.direction() == NetworkSelector::INGRESS) {
        problems->Add(path + ".match.direction", "a partition always cuts both directions");
      }
      break;
    case NetworkFault::kBandwidth: {
      const auto& b = f.bandwidth();
      if (b.rate_bytes_per_second() < kMinNetworkRate ||
          b.rate_bytes_per_second() > kMaxNetworkRate) {
        problems->Add(path + ".bandwidth.rate_bytes_per_second",
                      "must be from 1000 bytes/s (8kbit) to 2^40 bytes/s");
      }
      if (b.burst_bytes() != 0 &&
          (b.burst_bytes() < kMinNetworkBurst || b.burst_bytes() > kMaxNetworkBurst)) {
        problems->Add(path + ".bandwidth.burst_bytes", "must be from 1500b to 1gb (or unset)");
      }
      break;
    }
    case NetworkFault::kBlackhole:
    case NetworkFault::kReject:
      break;
  }
  ValidateSelectorLists(m, path + ".match", problems);
  if ((m.remote_ports_size() > 0 || m.local_ports_size() > 0) &&
      m.protocol() == NetworkSelector::ICMP) {
    problems->Add(path + ".match.protocol", "ports need protocol tcp, udp or any, not icmp");
  }
}

}  // namespace faultline::faultspec
