#include "agent/host/host_addresses.h"

#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>

#include "agent/host/host_call.h"

namespace faultline::agent::host {
namespace {

// The workers lookups run on: at most kMaxLookupsInFlight at once, stuck ones included.
// getaddrinfo cannot be cancelled; a stuck one ends when the resolver's own timeouts do
// (resolv.conf: 5 s x 2 by default), so this only bounds a burst. Never destroyed (a lookup may
// still be running at exit).
constexpr size_t kMaxLookupsInFlight = 64;
HostCallPool& LookupPool() {
  static HostCallPool* pool = new HostCallPool(
      HostCallPoolOptions{.name = "name lookup", .max_workers = kMaxLookupsInFlight});
  return *pool;
}

// One resolution: the answers of every host, filled by the lookup threads. Shared with them so a
// caller that gave up can return while they finish.
struct Resolution {
  std::mutex mu;
  std::condition_variable done;
  std::vector<bool> answered;  // per host
  size_t pending = 0;
  std::set<std::string> addresses;
};

std::vector<std::string> Lookup(const std::string& host) {
  std::vector<std::string> out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return out;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) == 0) {
      out.emplace_back(buf);
    }
  }
  freeaddrinfo(res);
  return out;
}

// The body of ResolveHostAddressesWithin; on an error `partial` gets what did resolve.
Result<std::vector<std::string>> Resolve(const std::vector<std::string>& hosts,
                                         std::chrono::milliseconds timeout,
                                         std::vector<std::string>* partial) {
  if (hosts.empty()) return std::vector<std::string>{};
  const auto deadline = HostCallPool::Clock::now() + timeout;
  auto resolution = std::make_shared<Resolution>();
  resolution->answered.assign(hosts.size(), false);
  resolution->pending = hosts.size();
  for (size_t i = 0; i < hosts.size(); ++i) {
    // A lookup stuck in the resolver must not hold the caller; the task owns `resolution`. One
    // that finds no free worker by the deadline simply does not answer (reported as late below).
    LookupPool().TryStart(
        [resolution, i, host = hosts[i]] {
          std::vector<std::string> found = Lookup(host);
          {
            std::lock_guard<std::mutex> lock(resolution->mu);
            resolution->addresses.insert(found.begin(), found.end());
            resolution->answered[i] = true;
            --resolution->pending;
          }
          resolution->done.notify_all();
        },
        deadline);
  }
  std::unique_lock<std::mutex> lock(resolution->mu);
  if (!resolution->done.wait_until(lock, deadline, [&] { return resolution->pending == 0; })) {
    std::string late;
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (!resolution->answered[i]) late += (late.empty() ? "" : ", ") + hosts[i];
    }
    partial->assign(resolution->addresses.begin(), resolution->addresses.end());
    return DeadlineExceeded("resolving " + late + " took longer than " +
                            std::to_string(timeout.count()) + " ms (is the resolver answering?)");
  }
  return std::vector<std::string>(resolution->addresses.begin(), resolution->addresses.end());
}

}  // namespace

Result<std::vector<std::string>> ResolveHostAddressesWithin(const std::vector<std::string>& hosts,
                                                            std::chrono::milliseconds timeout) {
  std::vector<std::string> partial;
  return Resolve(hosts, timeout, &partial);
}

std::vector<std::string> ResolveHostAddresses(const std::vector<std::string>& hosts) {
  std::vector<std::string> partial;
  Result<std::vector<std::string>> resolved = Resolve(hosts, kResolveTimeout, &partial);
  if (!resolved.ok()) {
    spdlog::warn("host names: {}", resolved.status().message());
    return partial;
  }
  return std::move(resolved).value();
}

}  // namespace faultline::agent::host
