#include "common/probes/grpc_health_probe.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/status.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace faultline::probes {

namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr size_t kMaxPemBytes = 1 << 20;

// The file's contents, or an error message in *why.
std::optional<std::string> ReadPem(const std::string& path, const char* what, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = std::string("cannot read the TLS ") + what + " file " + path;
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.empty() || text.size() > kMaxPemBytes) {
    *why = std::string("the TLS ") + what + " file " + path + " is empty or larger than 1 MiB";
    return std::nullopt;
  }
  return text;
}

}  // namespace

GrpcHealthProbe::GrpcHealthProbe(const ProbeSpec& spec)
    : spec_(spec.grpc_health), timeout_(spec.timeout) {}

ProbeOutcome GrpcHealthProbe::TakeSample() const {
  ProbeOutcome out;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments args;
  // A private subchannel pool: no connection (or its backoff) is shared with earlier samples.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  if (spec_.tls) {
    grpc::SslCredentialsOptions ssl;
    std::string why;
    if (!spec_.ca_file.empty()) {
      auto ca = ReadPem(spec_.ca_file, "CA", &why);
      if (!ca) {
        out.detail = why;
        return out;
      }
      ssl.pem_root_certs = *ca;
    }
    if (!spec_.cert_file.empty()) {
      auto cert = ReadPem(spec_.cert_file, "certificate", &why);
      auto key = cert ? ReadPem(spec_.key_file, "key", &why) : std::nullopt;
      if (!cert || !key) {
        out.detail = why;
        return out;
      }
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    if (!spec_.server_name.empty()) {
      args.SetSslTargetNameOverride(spec_.server_name);
    }
  } else {
    creds = grpc::InsecureChannelCredentials();
  }

  const MonoTime started = SystemClock::Instance().Now();
  auto channel = grpc::CreateCustomChannel(spec_.address, creds, args);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
  HealthCheckRequest request;
  request.set_service(spec_.service);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&ctx, request, &response);
  out.latency = SystemClock::Instance().Now() - started;
  if (!status.ok()) {
    // faultline's StatusCode is aligned with grpc::StatusCode (common/status.h).
    out.detail = StatusCodeName(static_cast<StatusCode>(status.error_code()));
    if (!status.error_message().empty()) out.detail += ": " + status.error_message();
    return out;
  }
  out.detail = HealthCheckResponse::ServingStatus_Name(response.status());
  out.ok = response.status() == HealthCheckResponse::SERVING;
  return out;
}

}  // namespace faultline::probes
