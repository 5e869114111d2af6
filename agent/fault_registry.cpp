#include "agent/fault_registry.h"

#include <google/protobuf/descriptor.h>

#include <set>

namespace faultline::agent {

Status FaultRegistry::Register(std::unique_ptr<FaultBackend> backend) {
  if (backend == nullptr) return InvalidArgument("cannot register a null fault backend");
  std::string kind = backend->Kind();
  if (kind.empty()) return InvalidArgument("a fault backend must have a non-empty kind");
  if (backends_.count(kind) != 0) {
    return AlreadyExists("a backend for fault kind '" + kind + "' is already registered");
  }
  backends_.emplace(std::move(kind), std::move(backend));
  return Status::Ok();
}

FaultBackend* FaultRegistry::Find(const std::string& kind) const {
  auto it = backends_.find(kind);
  return it == backends_.end() ? nullptr : it->second.get();
}

std::vector<std::string> FaultRegistry::KnownKinds() {
  std::vector<std::string> kinds;
  const google::protobuf::OneofDescriptor* oneof =
      v1::FaultSpec::descriptor()->FindOneofByName("kind");
  if (oneof == nullptr) return kinds;
  for (int i = 0; i < oneof->field_count(); ++i) kinds.push_back(oneof->field(i)->name());
  return kinds;
}

Capabilities FaultRegistry::DetectAll() {
  // Detection may touch the kernel; run it without holding the lock that readers take.
  std::map<std::string, Status> results;
  for (auto& [kind, backend] : backends_) results[kind] = backend->DetectCapability();
  {
    std::lock_guard<std::mutex> lock(mu_);
    detection_ = std::move(results);
    detected_ = true;
  }
  return GetCapabilities();
}

Capabilities FaultRegistry::GetCapabilities() const {
  std::lock_guard<std::mutex> lock(mu_);
  Capabilities caps;
  std::set<std::string> kinds;
  for (const std::string& kind : KnownKinds()) kinds.insert(kind);
  for (const auto& [kind, backend] : backends_) kinds.insert(kind);
  for (const std::string& kind : kinds) {
    if (backends_.count(kind) == 0) {
      caps.missing[kind] = "no backend for this kind in this agent";
      continue;
    }
    auto it = detection_.find(kind);
    if (!detected_ || it == detection_.end()) {
      caps.missing[kind] = "not detected yet";
    } else if (it->second.ok()) {
      caps.available.push_back(kind);
    } else {
      caps.missing[kind] =
          it->second.message().empty() ? it->second.ToString() : it->second.message();
    }
  }
  return caps;
}

Status FaultRegistry::CheckAvailable(const std::string& kind) const {
  Capabilities caps = GetCapabilities();
  for (const std::string& available : caps.available) {
    if (available == kind) return Status::Ok();
  }
  auto it = caps.missing.find(kind);
  std::string reason = it == caps.missing.end() ? "unknown fault kind" : it->second;
  return FailedPrecondition("fault kind '" + kind + "' is not available on this agent: " + reason);
}

}  // namespace faultline::agent
