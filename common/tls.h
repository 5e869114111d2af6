#pragma once
// gRPC transport security for Faultline: mutual TLS credentials that reload their files from disk,
// the identity of an authenticated peer, and the rule for where plaintext is allowed.
// Roles and the certificate layout are described in common/certificates.h.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/certificates.h"
#include "common/status.h"

namespace faultline {

// The three PEM files of one side of an mTLS connection.
struct TlsFiles {
  std::string ca;    // CA bundle that signs the peers this side accepts
  std::string cert;  // this side's certificate (chain)
  std::string key;   // its private key
};

// How often the credential files are re-read. New handshakes use what was last read; existing
// connections keep theirs. A file that cannot be read keeps the previous contents in use.
inline constexpr std::chrono::seconds kDefaultTlsRefresh{10};

// Checks up front that the three files exist, parse as PEM (a CA certificate, a certificate and a
// private key) and that the key belongs to the certificate, so a mistake is a clear error at start
// and not a silent handshake failure later. INVALID_ARGUMENT naming the file and the problem.
Status CheckTlsFiles(const TlsFiles& files);

// Server credentials that require a client certificate and verify it against files.ca
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY). The files are watched: a rotated
// CA or certificate is used by new connections within `refresh`, without a restart. Runs
// CheckTlsFiles first and returns its error.
Result<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, std::chrono::seconds refresh = kDefaultTlsRefresh);

// Channel credentials presenting files.cert and verifying the server's certificate against
// files.ca, including that its SANs match the host part of the address dialled and, when
// `server_role` is given, that it carries that role (faultline:role:*): an agent certificate
// cannot pose as a controller to another agent, nor a controller or operator certificate as an
// agent to the CLI. A wrong or missing role fails the handshake (the call sees UNAVAILABLE; the
// reason is logged by gRPC). Watched like the server's. Runs CheckTlsFiles first and returns its
// error.
Result<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, std::optional<Role> server_role,
    std::chrono::seconds refresh = kDefaultTlsRefresh);

// Who is calling, as far as the transport says.
struct PeerIdentity {
  bool authenticated = false;  // a verified client certificate was presented
  std::string name;            // certificate CN ("faultline-operator"); "anonymous" otherwise
  std::optional<Role> role;    // from the faultline:role:* URI SAN
  std::optional<std::string> agent_id;  // from the faultline:agent:* URI SAN
  std::optional<std::string> team;      // from the faultline:team:* URI SAN
  // Set (and `team` empty) when the certificate's team SANs are invalid (TeamFromUris); a caller
  // that applies team rules must refuse such a peer.
  std::string team_error;
  std::string address;  // the peer's transport address ("ipv4:10.77.0.1:53422")

  // "faultline-operator (operator)" / "faultline-x (no role)" / "anonymous (plaintext)".
  std::string Describe() const;
};

// The identity of the peer of a server call (its auth context and peer address). Never fails.
PeerIdentity IdentifyPeer(const grpc::ServerContextBase& ctx);

// Where a server may listen without TLS. OK for a literal loopback address (127.0.0.0/8, ::1,
// "localhost"), and for a literal address inside the sandbox's subnet 10.77.0.0/24 *when this
// process runs in a network namespace other than the machine's initial one* (the sandbox's hosts
// are namespaces; a real host that happens to use 10.77.0.0/24 on its own network is refused).
// Wildcards (0.0.0.0, [::], empty host) and names other than localhost are refused:
// FAILED_PRECONDITION with a message that says why and what to do instead.
Status CheckPlaintextAllowed(const std::string& listen_address);

// The host part of HOST:PORT ("[::1]:7070" → "::1").
std::string HostOf(const std::string& address);

}  // namespace faultline
