#include "controller/console/console_auth.h"

#include <openssl/rand.h>

#include <set>

namespace faultline::console {
namespace {
Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
}  // namespace

Result<Principal> CertificatePrincipal(const CertificateInfo& cert) {
  constexpr std::string_view kRole = "faultline:role:";
  constexpr std::string_view kTeam = "faultline:team:";
  std::set<std::string> roles, teams;
  for (const auto& uri : cert.uris) {
    if (uri.rfind(kRole, 0) == 0) roles.insert(uri.substr(kRole.size()));
    if (uri.rfind(kTeam, 0) == 0) teams.insert(uri.substr(kTeam.size()));
  }
  if (roles.size() != 1 || (*roles.begin() != "viewer" && *roles.begin() != "operator")) {
    return Unauthenticated("the client certificate of '" + cert.common_name +
                           "' carries no console role (one URI SAN faultline:role:viewer or "
                           "faultline:role:operator)");
  }
  if (teams.size() > 1) {
    return Unauthenticated("the client certificate of '" + cert.common_name +
                           "' names more than one team");
  }
  return Principal{cert.common_name, *roles.begin(), teams.empty() ? "" : *teams.begin(),
                   "certificate"};
}

std::function<Result<Principal>(const std::string&)> StaticTokens(
    std::map<std::string, Principal> tokens) {
  return [tokens = std::move(tokens)](const std::string& token) -> Result<Principal> {
    auto it = tokens.find(token);
    if (it == tokens.end()) return Unauthenticated("unknown or revoked token");
    Principal p = it->second;
    p.source = "token";
    return p;
  };
}

SessionTable::SessionTable(Duration ttl, size_t max_sessions, Clock& clock)
    : ttl_(ttl), max_sessions_(std::max<size_t>(1, max_sessions)), clock_(clock) {}

Result<std::string> SessionTable::Create(const Principal& principal) {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return Internal("no random bytes for a session id");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  const MonoTime now = clock_.Now();
  std::lock_guard lock(mu_);
  // Expired sessions go first; then, still full, the oldest.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.expires <= now ? sessions_.erase(it) : std::next(it);
  }
  while (sessions_.size() >= max_sessions_) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.created < oldest->second.created) oldest = it;
    }
    sessions_.erase(oldest);
  }
  sessions_[id] = Entry{principal, now + ttl_, now};
  return id;
}

std::optional<Principal> SessionTable::Find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires <= clock_.Now()) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second.principal;
}

void SessionTable::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

size_t SessionTable::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace faultline::console
