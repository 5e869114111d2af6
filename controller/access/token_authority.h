#pragma once
// TokenAuthority: console/API tokens (`faultline token create|list|revoke`, docs/access.md).
//
// A token is "flt_<id>_<secret>": <id> 16 characters [a-z0-9] (public: listed, audited), <secret>
// 64 hex digits of 256 random bits (RAND_bytes). The store keeps only the hex SHA-256 of
// <secret>, with role (viewer|operator), team, name, creator, expiry and revocation time. The
// token text is returned once by Create and never again. Authenticate looks the record up by id
// and compares the hashes in constant time (CRYPTO_memcmp).
//
// Revocation takes effect at once: every Authenticate and CheckStillValid reads the store (a
// primary-key lookup), so a revoke on one controller is seen by every controller on the same
// database at their next request; the console calls CheckStillValid for each request made with
// a session opened from a token, so the session dies with its token.
//
// Who may manage tokens (CheckMayManageTokens): operators only; an operator with a team only for
// that team (create, list, revoke); an operator without a team for every team.
//
// Thread-safe (the store serialises). Every method blocks on the store: call it from a worker,
// not from a gRPC callback or an event loop.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controller/access/principal.h"
#include "controller/store/run_store.h"

namespace faultline::access {

struct IssuedToken {
  std::string token;  // the only copy of the secret
  store::TokenRecord record;
};

class TokenAuthority {
 public:
  // `store` and `clock` must outlive the authority.
  explicit TokenAuthority(store::RunStore& store, Clock* clock = &SystemClock::Instance());

  // A new token. INVALID_ARGUMENT for a role other than viewer/operator, an invalid team name
  // ([A-Za-z0-9._-]{1,63}, or empty), a name over 128 bytes or with control characters, or a
  // negative ttl (zero: never expires); errors of the store otherwise.
  Result<IssuedToken> Create(Role role, const std::string& team, std::chrono::seconds ttl,
                             const std::string& name, const std::string& created_by);
  // Every token (no secrets; the hash is cleared), oldest first.
  Result<std::vector<store::TokenRecord>> List();
  // Revokes `id` (idempotent). NOT_FOUND for an unknown id.
  Status Revoke(const std::string& id);
  // The stored record of `id` (hash cleared). NOT_FOUND.
  Result<store::TokenRecord> Get(const std::string& id);

  // The principal `token` stands for (source "token", identity "token:<id>" plus its name).
  // UNAUTHENTICATED ("malformed token", "unknown token", "token <id> was revoked", "token <id>
  // expired") for anything else; UNAVAILABLE when the store cannot be read.
  Result<Principal> Authenticate(std::string_view token, const std::string& peer);
  // OK while token `id` exists, is not revoked and not expired; UNAUTHENTICATED otherwise. For a
  // console session opened with the token: call it on every request of the session.
  Status CheckStillValid(const std::string& id);

 private:
  Status Usable(const store::TokenRecord& record) const;

  store::RunStore& store_;
  Clock* clock_;
};

// OK when `who` may create, list or revoke tokens of `team` (see the top); PERMISSION_DENIED
// naming the rule otherwise. Pure.
Status CheckMayManageTokens(const Principal& who, const std::string& team);

// Hex SHA-256 of `text`. Pure.
std::string Sha256Hex(std::string_view text);

}  // namespace faultline::access
