#include "controller/access/token_authority.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace faultline::access {
namespace {

constexpr std::string_view kPrefix = "flt_";
constexpr size_t kIdLength = 16;
constexpr size_t kSecretBytes = 32;

std::string Hex(const unsigned char* data, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

Result<std::string> RandomHex(size_t bytes) {
  std::string buf(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), static_cast<int>(bytes)) != 1) {
    return Internal("RAND_bytes failed");
  }
  return Hex(reinterpret_cast<const unsigned char*>(buf.data()), bytes);
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  return Hex(digest, len);
}

TokenAuthority::TokenAuthority(store::RunStore& store, Clock* clock)
    : store_(store), clock_(clock) {}

Result<IssuedToken> TokenAuthority::Create(Role role, const std::string& team,
                                           std::chrono::seconds ttl, const std::string& name,
                                           const std::string& created_by) {
  if (role != Role::kViewer && role != Role::kOperator) {
    return InvalidArgument(std::string("a token's role is viewer or operator, not ") +
                           RoleName(role));
  }
  if (!team.empty() && !IsValidTeamName(team)) {
    return InvalidArgument("'" + team + "' is not a team name ([A-Za-z0-9._-]{1,63})");
  }
  if (name.size() > 128) return InvalidArgument("a token's name has at most 128 bytes");
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument("a token's name may not contain control characters");
    }
  }
  if (ttl.count() < 0) return InvalidArgument("a token's lifetime cannot be negative");
  Result<std::string> id = RandomHex(kIdLength / 2);
  if (!id.ok()) return id.status();
  Result<std::string> secret = RandomHex(kSecretBytes);
  if (!secret.ok()) return secret.status();
  IssuedToken out;
  out.token = std::string(kPrefix) + *id + "_" + *secret;
  store::TokenRecord& r = out.record;
  r.id = *id;
  r.name = name;
  r.role = RoleName(role);
  r.team = team;
  r.secret_hash = Sha256Hex(*secret);
  r.created_unix_ms = clock_->WallUnixMs();
  r.expires_unix_ms = ttl.count() == 0 ? 0 : r.created_unix_ms + ttl.count() * 1000;
  r.created_by = created_by;
  if (Status s = store_.CreateToken(r); !s.ok()) return s;
  r.secret_hash.clear();
  return out;
}

Result<std::vector<store::TokenRecord>> TokenAuthority::List() {
  auto list = store_.ListTokens();
  if (!list.ok()) return list.status();
  for (auto& t : *list) t.secret_hash.clear();
  return list;
}

Status TokenAuthority::Revoke(const std::string& id) { return store_.RevokeToken(id); }

Result<store::TokenRecord> TokenAuthority::Get(const std::string& id) {
  auto t = store_.GetToken(id);
  if (!t.ok()) return t.status();
  t->secret_hash.clear();
  return t;
}

Status TokenAuthority::Usable(const store::TokenRecord& r) const {
  if (r.revoked_unix_ms != 0) return Unauthenticated("token " + r.id + " was revoked");
  if (r.expires_unix_ms != 0 && clock_->WallUnixMs() >= r.expires_unix_ms) {
    return Unauthenticated("token " + r.id + " expired");
  }
  return Status::Ok();
}

Result<Principal> TokenAuthority::Authenticate(std::string_view token, const std::string& peer) {
  // flt_<16 id>_<64 secret>
  if (token.size() != kPrefix.size() + kIdLength + 1 + 2 * kSecretBytes ||
      token.substr(0, kPrefix.size()) != kPrefix || token[kPrefix.size() + kIdLength] != '_') {
    return Unauthenticated("malformed token");
  }
  std::string id(token.substr(kPrefix.size(), kIdLength));
  std::string_view secret = token.substr(kPrefix.size() + kIdLength + 1);
  if (!IsLowerHex(id) || !IsLowerHex(secret)) return Unauthenticated("malformed token");
  auto record = store_.GetToken(id);
  if (!record.ok()) {
    if (record.status().code() == StatusCode::kNotFound) return Unauthenticated("unknown token");
    return Unavailable("cannot check the token: " + record.status().message());
  }
  const std::string want = record->secret_hash;
  const std::string got = Sha256Hex(secret);
  if (want.size() != got.size() || CRYPTO_memcmp(want.data(), got.data(), got.size()) != 0) {
    return Unauthenticated("unknown token");
  }
  if (Status s = Usable(*record); !s.ok()) return s;
  std::optional<Role> role = ParseRole(record->role);
  if (!role || (*role != Role::kViewer && *role != Role::kOperator)) {
    return Unauthenticated("token " + id + " has no usable role");
  }
  Principal p;
  p.identity = "token:" + id + (record->name.empty() ? "" : " " + record->name);
  p.role = *role;
  p.team = record->team;
  p.source = "token";
  p.token_id = id;
  p.peer = peer;
  return p;
}

Status TokenAuthority::CheckStillValid(const std::string& id) {
  auto record = store_.GetToken(id);
  if (!record.ok()) {
    if (record.status().code() == StatusCode::kNotFound) return Unauthenticated("unknown token");
    return Unavailable("cannot check the token: " + record.status().message());
  }
  return Usable(*record);
}

Status CheckMayManageTokens(const Principal& who, const std::string& team) {
  if (Status s = RequireRole(who, Role::kOperator, "manage tokens"); !s.ok()) return s;
  if (who.team.empty() || who.team == team) return Status::Ok();
  return PermissionDenied("an operator of team " + who.team +
                          " may manage only that team's tokens, not " +
                          (team.empty() ? std::string("team-less ones") : "team " + team + "'s"));
}

}  // namespace faultline::access
