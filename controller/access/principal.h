#pragma once
// Principal: who is acting on the controller (gRPC or console), as the access layer sees it, and
// the role rules. The one definition for the CLI's RPCs and the console's requests alike
// (docs/access.md, docs/console-api.md).
//
// Roles: viewer may read (fleet, runs, history, schedules, the event stream); operator may also
// act (halt, resume, annotate, schedules, start runs subject to the team policy, tokens). Team:
// from the certificate's faultline:team:* URI SAN or the token's record; empty = no team. A
// principal without a team is the fleet's administrator for tokens (any team) but, when a team
// policy is configured, may not start runs (team_policy.h).

#include <optional>
#include <string>
#include <string_view>

#include "common/certificates.h"
#include "common/status.h"
#include "common/tls.h"

namespace faultline::access {

struct Principal {
  std::string identity{};  // certificate CN, or "token:<id>" (+ " <name>")
  Role role = Role::kViewer;
  std::string team{};      // empty: none
  std::string source{};    // "certificate" | "token" | "plaintext"
  std::string token_id{};  // set when source == "token"
  std::string peer{};      // transport address ("ipv4:10.77.0.1:53422"), may be empty

  // "alice (operator, team orders)" / "token:0123abcd ci (viewer)". For messages and logs.
  std::string Describe() const;
};

// The principal of a verified client certificate. A certificate without a viewer or operator role
// (controller, agent, none), an unauthenticated peer, or invalid team SANs:
// PERMISSION_DENIED / UNAUTHENTICATED with the reason. Pure.
Result<Principal> PrincipalFromPeer(const PeerIdentity& peer);

// The principal of a plaintext (--insecure, loopback/sandbox only) caller: an operator without
// a team named "anonymous". Pure.
Principal PlaintextPrincipal(const std::string& peer_address);

// OK when `who` may perform an action that needs `needed` (viewer < operator); else
// PERMISSION_DENIED "role viewer may not <action> (needs operator)". Pure.
Status RequireRole(const Principal& who, Role needed, std::string_view action);

}  // namespace faultline::access
