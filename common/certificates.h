#pragma once
// Certificates for Faultline's mTLS: a development certificate authority and certificates that
// carry a Faultline role, made with the OpenSSL library (no `openssl` program, no shell).
//
// Role scheme (the one place it is defined): a certificate's role is a URI subject alternative
// name `faultline:role:<role>` with <role> one of viewer | operator | controller | agent. A
// certificate with no such URI, or with two different ones, has no role. A viewer may only read
// (controller and console); it is never allowed to change anything. The agent allows ApplyFault,
// RenewLease, RevertFault and RevertAll only to operator and controller certificates. Every dialler
// checks the role of the server it reached: the CLI wants an agent (or a controller for controller
// verbs), an agent dialling out wants a controller.
//
// Agent identity: a per-agent certificate also carries `faultline:agent:<id>` (exactly one; <id>
// matches [A-Za-z0-9._-]{1,63}). A faultline-controller registers an attaching agent under that
// id and refuses a Hello that claims another, or a certificate without one.
//
// Team: a viewer or operator certificate may carry `faultline:team:<team>` (at most one distinct
// value; <team> follows the agent id rule [A-Za-z0-9._-]{1,63}). The controller's team policy
// (controller/access/team_policy.h, docs/access.md) applies to the team's runs.
//
// `faultline certs init DIR` (WriteDevCertificates) writes, all PEM, keys mode 0600:
//   ca.pem ca-key.pem                  the development CA (EC P-256, 10 years)
//   agent.pem agent-key.pem            role agent; server+client auth; SANs: 127.0.0.1, ::1,
//                                      localhost and the extra SANs (the CLI adds the sandbox's);
//                                      no agent id: serves the Agent service, cannot attach to a
//                                      controller
//   agent-<id>.pem agent-<id>-key.pem  one per DevCertificateOptions::agent_ids: as agent.pem,
//                                      with CN <id> and the agent id URI above
//   controller.pem controller-key.pem  role controller; client auth
//   operator.pem operator-key.pem      role operator; client auth

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace faultline {

enum class Role { kOperator, kController, kAgent, kViewer };

// "operator" / "controller" / "agent" / "viewer".
const char* RoleName(Role role);
// The inverse of RoleName; nullopt for anything else.
std::optional<Role> ParseRole(std::string_view name);
// "faultline:role:<name>", the URI SAN that carries `role`.
std::string RoleUri(Role role);
// The role carried by these URI SANs: exactly one distinct faultline:role:* value that names a
// known role. Any other URIs are ignored; none, an unknown role or two different roles → nullopt.
std::optional<Role> RoleFromUris(const std::vector<std::string>& uris);

// [A-Za-z0-9._-]{1,63}: the agent ids a certificate may carry (also what a controller accepts).
bool IsValidAgentId(std::string_view id);
// "faultline:agent:<id>", the URI SAN that carries an agent's identity.
std::string AgentIdUri(const std::string& agent_id);
// The agent id carried by these URI SANs: exactly one distinct faultline:agent:* value that is a
// valid agent id. None, an invalid one or two different ones → nullopt.
std::optional<std::string> AgentIdFromUris(const std::vector<std::string>& uris);

// [A-Za-z0-9._-]{1,63} (the agent id rule): the team names a certificate or token may carry.
bool IsValidTeamName(std::string_view team);
// "faultline:team:<team>", the URI SAN that carries a principal's team.
std::string TeamUri(const std::string& team);
// The team carried by these URI SANs: nullopt when there is none; INVALID_ARGUMENT when one is
// not a valid team name or two different ones are present (such a certificate is refused, never
// read as "no team").
Result<std::optional<std::string>> TeamFromUris(const std::vector<std::string>& uris);

// A PEM certificate and its PEM (PKCS#8) private key.
struct CertificateAndKey {
  std::string cert_pem;
  std::string key_pem;
};

struct CertificateRequest {
  CertificateRequest(std::string cn, std::optional<Role> r) : common_name(std::move(cn)), role(r) {}

  std::string common_name;              // subject CN, also the identity the audit log shows
  std::optional<Role> role;             // written as the URI SAN above
  std::optional<std::string> agent_id;  // written as faultline:agent:<id> (must be valid)
  std::optional<std::string> team;      // written as faultline:team:<team> (must be valid)
  std::vector<std::string> ip_sans;     // "10.77.0.10", "::1"
  std::vector<std::string> dns_sans;    // "localhost"
  bool server_auth = false;             // extendedKeyUsage serverAuth (agents)
  bool client_auth = true;              // extendedKeyUsage clientAuth
  // Validity window relative to now; a negative not_after makes an already expired certificate
  // (tests need one).
  std::chrono::seconds not_before = std::chrono::minutes(-5);
  std::chrono::seconds not_after = std::chrono::hours(24 * 825);
};

// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign) with a fresh EC P-256 key.
// INTERNAL when OpenSSL fails.
Result<CertificateAndKey> CreateCertificateAuthority(const std::string& common_name,
                                                     std::chrono::seconds validity);

// A leaf certificate for `request`, signed by `ca`, with a fresh EC P-256 key and a random serial.
// INVALID_ARGUMENT for an empty common name or a SAN OpenSSL rejects (e.g. a malformed IP);
// INTERNAL when the CA cannot be read or OpenSSL fails.
Result<CertificateAndKey> IssueCertificate(const CertificateAndKey& ca,
                                           const CertificateRequest& request);

struct DevCertificateOptions {
  // Extra SANs for agent.pem: an IP literal becomes an IP SAN, anything else a DNS SAN.
  std::vector<std::string> extra_agent_sans;
  // One agent-<id>.pem per id (valid agent ids, no duplicates), for agents that attach to a
  // faultline-controller: each is registered there under the id its certificate carries.
  std::vector<std::string> agent_ids;
  // false: refuse (ALREADY_EXISTS) when DIR already holds ca.pem, so a CA is never replaced by
  // accident (every certificate it signed would stop working).
  bool overwrite = false;
};

// `faultline certs init DIR`: creates DIR (mode 0700) and the files listed at the top. Each file is
// written to a temporary name and renamed, so a reader (an agent watching its files) never sees a
// half-written one. Errors: ALREADY_EXISTS (see overwrite), INVALID_ARGUMENT for a bad extra SAN,
// INTERNAL for I/O or OpenSSL failures.
Status WriteDevCertificates(const std::string& dir, const DevCertificateOptions& options);

// The SANs agent.pem gets from WriteDevCertificates before the extra ones.
std::vector<std::string> DefaultAgentSans();

}  // namespace faultline
