#pragma once
// GrpcHealthProbe: the `grpc_health` probe kind. One sample = one grpc.health.v1.Health/Check
// call with the probe's timeout as its deadline; a success when the answer is SERVING.
//
// Each sample dials a fresh channel with its own subchannel pool, as a new client would: a
// channel kept between samples would carry gRPC's reconnect backoff (up to minutes) across a
// fault and report the service down long after it is back.
//
// Threading: TakeSample is const and may run concurrently with itself.

#include <string>

#include "common/probes/probe_runner.h"
#include "common/probes/probe_spec.h"

namespace faultline::probes {

class GrpcHealthProbe {
 public:
  // `spec` is a validated probe of kind kGrpcHealth.
  explicit GrpcHealthProbe(const ProbeSpec& spec);

  // Calls Check once. Never fails: a TLS file that cannot be read, an unreachable server, a
  // status other than OK, or a serving status other than SERVING is a failing outcome whose
  // detail says which ("SERVING", "NOT_SERVING", "NOT_FOUND: unknown service", ...). The TLS
  // files are read on every sample, so rotated certificates are picked up.
  ProbeOutcome TakeSample() const;

 private:
  GrpcHealthSpec spec_;
  Duration timeout_;
};

}  // namespace faultline::probes
