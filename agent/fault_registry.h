#pragma once
// FaultRegistry: which backend serves which fault kind, and whether this host can run it.
// Backends are registered explicitly (main registers the built-ins, tests register fakes); there
// is no static self-registration.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/fault_backend.h"
#include "common/status.h"

namespace faultline::agent {

// The outcome of capability detection.
struct Capabilities {
  // Kinds that are registered and whose DetectCapability returned OK, sorted.
  std::vector<std::string> available;
  // Every other known kind (a FaultSpec oneof case, or a registered backend) → why it is not
  // available ("no backend for this kind in this agent", or the backend's reason).
  std::map<std::string, std::string> missing;
};

class FaultRegistry {
 public:
  FaultRegistry() = default;
  FaultRegistry(const FaultRegistry&) = delete;
  FaultRegistry& operator=(const FaultRegistry&) = delete;

  // Takes ownership of a backend for backend->Kind(). Call before DetectAll and before the
  // registry is shared between threads. INVALID_ARGUMENT for a null backend or an empty kind,
  // ALREADY_EXISTS when the kind already has a backend.
  Status Register(std::unique_ptr<FaultBackend> backend);

  // The backend for `kind`, or nullptr. The pointer stays valid for the registry's lifetime.
  // Thread-safe once registration is over.
  FaultBackend* Find(const std::string& kind) const;

  // Runs every backend's DetectCapability once and remembers the results (a second call detects
  // again and replaces them). Thread-safe.
  Capabilities DetectAll();

  // The remembered result of DetectAll. Before DetectAll: nothing available, every known kind
  // missing with reason "not detected yet". Thread-safe.
  Capabilities GetCapabilities() const;

  // OK when `kind` has a backend that DetectAll found usable; otherwise FAILED_PRECONDITION
  // naming the kind and the reason. Thread-safe.
  Status CheckAvailable(const std::string& kind) const;

  // Every kind the FaultSpec message defines ("dns", "network", "dependency").
  static std::vector<std::string> KnownKinds();

 private:
  std::map<std::string, std::unique_ptr<FaultBackend>> backends_;
  mutable std::mutex mu_;
  bool detected_ = false;                    // guarded by mu_
  std::map<std::string, Status> detection_;  // guarded by mu_; kind → DetectCapability result
};

}  // namespace faultline::agent
