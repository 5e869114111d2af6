// libFuzzer target: the agent's validation of an ApplyFaultRequest (protobuf text format, so the
// corpus is readable and hand-made), i.e. everything a request passes before anything reaches
// the kernel: run and fault ids (they name nft tables and journal files) and the DNS backend's
// Validate (modes, domain patterns that end up in the interceptor's matcher). Whatever is
// accepted must be safe to use: ids and domains never carry whitespace, quotes, shell or nft
// syntax characters.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/dns/dns_backend.h"
#include "common/ids.h"
#include "faultline/v1/agent.pb.h"

namespace {

bool HasUnsafeCharacter(const std::string& s) {
  for (unsigned char c : s) {
    if (c <= ' ' || c >= 0x7f) return true;
    if (std::string("\"'`$;|&<>(){}[]\\#!,=/").find(static_cast<char>(c)) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  faultline::v1::ApplyFaultRequest request;
  google::protobuf::TextFormat::Parser parser;
  parser.AllowPartialMessage(true);
  // Quiet: a malformed text proto is expected, not news.
  class Silent : public google::protobuf::io::ErrorCollector {
    void AddError(int, int, const std::string&) override {}
  } silent;
  parser.RecordErrorsTo(&silent);
  if (!parser.ParseFromString(std::string(reinterpret_cast<const char*>(data), size), &request)) {
    return 0;
  }
  static faultline::agent::dns::DnsBackend* backend =
      new faultline::agent::dns::DnsBackend(faultline::agent::dns::DnsBackendOptions{});
  bool ids_ok =
      faultline::IsValidRunId(request.run_id()) && faultline::IsValidFaultId(request.fault_id());
  faultline::Status valid = backend->Validate(request.spec());
  if (ids_ok && (HasUnsafeCharacter(request.run_id()) || HasUnsafeCharacter(request.fault_id()))) {
    std::abort();
  }
  if (valid.ok()) {
    for (const std::string& domain : request.spec().dns().domains()) {
      // '*' is the wildcard label; everything else must be a plain DNS name.
      std::string rest = domain.rfind("*.", 0) == 0 ? domain.substr(2) : domain;
      if (rest.empty() || HasUnsafeCharacter(rest) || rest.find('*') != std::string::npos) {
        std::abort();
      }
    }
  } else if (valid.message().empty()) {
    std::abort();
  }
  return 0;
}
