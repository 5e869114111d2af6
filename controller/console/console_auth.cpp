#include "controller/console/console_auth.h"

#include <openssl/rand.h>

#include "common/certificates.h"
#include "common/tls.h"

namespace faultline::console {

Result<Principal> CertificatePrincipal(const CertificateInfo& cert) {
  PeerIdentity peer;
  peer.authenticated = true;
  peer.name = cert.common_name;
  peer.role = RoleFromUris(cert.uris);
  if (auto team = TeamFromUris(cert.uris); team.ok()) {
    peer.team = *team;
  } else {
    peer.team_error = team.status().message();
  }
  Result<Principal> who = access::PrincipalFromPeer(peer);
  if (who.ok()) return who;
  const bool console_role = peer.role == Role::kViewer || peer.role == Role::kOperator;
  return Unauthenticated("the client certificate of '" + cert.common_name + "' " +
                         (console_role ? "is refused: " : "carries no console role: ") +
                         who.status().message());
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
