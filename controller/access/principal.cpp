#include "controller/access/principal.h"

namespace faultline::access {
namespace {

int Rank(Role r) {
  switch (r) {
    case Role::kViewer:
      return 1;
    case Role::kOperator:
      return 2;
    default:
      return 0;  // controller and agent certificates act on neither console nor runs
  }
}

}  // namespace

std::string Principal::Describe() const {
  std::string out = identity + " (" + RoleName(role);
  if (!team.empty()) out += ", team " + team;
  return out + ")";
}

Result<Principal> PrincipalFromPeer(const PeerIdentity& peer) {
  if (!peer.authenticated) {
    return Unauthenticated("no verified client certificate");
  }
  if (!peer.team_error.empty()) return PermissionDenied(peer.team_error);
  if (!peer.role || (*peer.role != Role::kViewer && *peer.role != Role::kOperator)) {
    return PermissionDenied(
        std::string("the certificate's role is ") +
        (peer.role ? std::string("'") + RoleName(*peer.role) + "'" : std::string("missing")) +
        " (needs faultline:role:viewer or faultline:role:operator)");
  }
  Principal p;
  p.identity = peer.name;
  p.role = *peer.role;
  p.team = peer.team.value_or("");
  p.source = "certificate";
  p.peer = peer.address;
  return p;
}

Principal PlaintextPrincipal(const std::string& peer_address) {
  Principal p;
  p.identity = "anonymous";
  p.role = Role::kOperator;
  p.source = "plaintext";
  p.peer = peer_address;
  return p;
}

Status RequireRole(const Principal& who, Role needed, std::string_view action) {
  if (Rank(who.role) >= Rank(needed) && Rank(who.role) > 0) return Status::Ok();
  return PermissionDenied(std::string("role ") + RoleName(who.role) + " may not " +
                          std::string(action) + " (needs " + RoleName(needed) + ")");
}

}  // namespace faultline::access
