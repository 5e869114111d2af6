#pragma once
// Who is calling the console (docs/console-api.md, "Authentication"), kept behind small function
// types so the access layer (controller/access/: hashed tokens, roles, team policy, audit) plugs
// in at wiring time and tests plug in a table.
//
//  - A client certificate verified against the fleet CA → ConsoleAuth::certificate (default:
//    CertificatePrincipal below, from the URI SANs).
//  - A token (POST /api/session, or `Authorization: Bearer`) → ConsoleAuth::token (default:
//    none: every token is refused).
//  - A session cookie → SessionTable: opaque random ids mapped server-side to a principal, with
//    an expiry; nothing about the principal is in the cookie.

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/status.h"
#include "controller/access/principal.h"

namespace faultline::console {

// An authenticated caller: the access layer's principal, the one type for the console and the
// gRPC API alike (controller/access/principal.h). On the console `role` is viewer or operator,
// `source` "certificate" or "token", and `token_id` is set for a token (revocation checks).
using Principal = access::Principal;

// What the server read from a verified client certificate.
struct CertificateInfo {
  std::string common_name;
  std::vector<std::string> uris;  // URI subject alternative names
};

// One audited action (docs/console-api.md: login, logout, halt, resume, annotate, pause, resume
// schedule, and refused attempts). `principal` is empty for an unauthenticated attempt.
struct AuditRecord {
  std::string action;  // "login", "halt", "annotate", ...
  std::string target;  // run id, schedule name, ... ("" when none)
  Principal principal;
  std::string peer;  // "10.0.0.5:51234"
  bool allowed = true;
  std::string detail;  // the refusal's message, or what was done
};

struct ConsoleAuth {
  // A token → its principal; UNAUTHENTICATED (or any error) refuses it. Empty: every token is
  // refused. Called from request threads: must be thread-safe.
  std::function<Result<Principal>(const std::string& token)> token;
  // A verified certificate → its principal; an error refuses it. Empty: CertificatePrincipal.
  std::function<Result<Principal>(const CertificateInfo& cert)> certificate;
  // Whether a session made from a token (principal.token_id set) may still be used: an error
  // (the token was revoked or expired) ends the session at its next request. Empty: sessions
  // live until they expire or log out. Thread-safe.
  std::function<Status(const Principal& principal)> still_valid;
  // Every action, allowed or refused. Empty: one spdlog line per record. Thread-safe.
  std::function<void(const AuditRecord&)> audit;
};

// The default certificate mapping, the gRPC API's (access::PrincipalFromPeer over the URI SAN
// scheme of common/certificates.h): `faultline:role:viewer|operator` (exactly one distinct role)
// and optionally one valid `faultline:team:<team>`; identity = the common name. UNAUTHENTICATED
// naming the problem when the certificate carries no console role or invalid team SANs. Pure.
Result<Principal> CertificatePrincipal(const CertificateInfo& cert);

// A fixed table of tokens (tests, and a single-user setup): token → principal with source
// "token".
std::function<Result<Principal>(const std::string&)> StaticTokens(
    std::map<std::string, Principal> tokens);

// Server-side sessions. Thread-safe.
class SessionTable {
 public:
  // `ttl`: a session lasts this long after it was created; `max_sessions`: the oldest is dropped
  // beyond it. `clock` must outlive the table.
  SessionTable(Duration ttl, size_t max_sessions, Clock& clock = SystemClock::Instance());
  // A new session for `principal`: a 256-bit random id, hex. Never fails (OpenSSL RAND_bytes;
  // INTERNAL if the generator fails).
  Result<std::string> Create(const Principal& principal);
  // The session's principal; nullopt for an unknown or expired id (an expired one is removed).
  std::optional<Principal> Find(const std::string& id);
  // Removes the session; idempotent.
  void Remove(const std::string& id);
  size_t size() const;

 private:
  struct Entry {
    Principal principal;
    MonoTime expires{};
    MonoTime created{};
  };
  const Duration ttl_;
  const size_t max_sessions_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> sessions_;  // guarded by mu_
};

}  // namespace faultline::console
