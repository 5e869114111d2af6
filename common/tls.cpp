#include "common/tls.h"

#include <arpa/inet.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

namespace faultline {
namespace {

constexpr char kSandboxPrefix[] = "10.77.0.";  // the sandbox's 10.77.0.0/24

Result<std::string> ReadWhole(const std::string& what, const std::string& path) {
  if (path.empty()) return InvalidArgument(what + ": no file given");
  std::ifstream in(path);
  if (!in) return InvalidArgument(what + " " + path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first PEM certificate in `pem`, or nullptr.
X509* ReadCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  return cert;
}

std::string FirstValue(const grpc::AuthContext& auth, const char* property) {
  for (const grpc::string_ref& v : auth.FindPropertyValues(property)) {
    return std::string(v.data(), v.size());
  }
  return "";
}

// Checks the server certificate's role, then gRPC's own host name check. Runs synchronously on
// gRPC's handshake thread; holds no state besides the role.
class ServerRoleVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ServerRoleVerifier(Role role) : role_(role) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> callback, grpc::Status* sync_status) override {
    std::vector<std::string> uris;
    for (const grpc::string_ref& uri : request->uri_names())
      uris.emplace_back(uri.data(), uri.size());
    std::optional<Role> role = RoleFromUris(uris);
    if (role != role_) {
      *sync_status = grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          std::string("the server's certificate carries ") +
              (role ? std::string("role ") + RoleName(*role) : std::string("no faultline role")) +
              ", not " + RoleName(role_) + " (" + RoleUri(role_) + ")");
      return true;
    }
    return host_name_.Verify(request, std::move(callback), sync_status);
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* request) override {
    host_name_.Cancel(request);
  }

 private:
  const Role role_;
  grpc::experimental::HostNameCertificateVerifier host_name_;
};

bool InInitialNetworkNamespace() {
  struct stat self {};
  struct stat init {};
  if (stat("/proc/self/ns/net", &self) != 0 || stat("/proc/1/ns/net", &init) != 0) return true;
  return self.st_ino == init.st_ino && self.st_dev == init.st_dev;
}

}  // namespace

Status CheckTlsFiles(const TlsFiles& files) {
  Result<std::string> ca = ReadWhole("TLS CA", files.ca);
  if (!ca.ok()) return ca.status();
  Result<std::string> cert = ReadWhole("TLS certificate", files.cert);
  if (!cert.ok()) return cert.status();
  Result<std::string> key = ReadWhole("TLS key", files.key);
  if (!key.ok()) return key.status();

  X509* ca_cert = ReadCert(*ca);
  if (ca_cert == nullptr) {
    return InvalidArgument("TLS CA " + files.ca + ": no PEM certificate in it");
  }
  X509_free(ca_cert);
  X509* own = ReadCert(*cert);
  if (own == nullptr) {
    return InvalidArgument("TLS certificate " + files.cert + ": no PEM certificate in it");
  }
  BIO* bio = BIO_new_mem_buf(key->data(), static_cast<int>(key->size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  bool matches = pkey != nullptr && X509_check_private_key(own, pkey) == 1;
  EVP_PKEY_free(pkey);
  X509_free(own);
  ERR_clear_error();
  if (pkey == nullptr)
    return InvalidArgument("TLS key " + files.key + ": no PEM private key in it");
  if (!matches) {
    return InvalidArgument("TLS key " + files.key + " does not belong to the certificate " +
                           files.cert);
  }
  return Status::Ok();
}

Result<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, std::chrono::seconds refresh) {
  if (Status s = CheckTlsFiles(files); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, static_cast<unsigned>(refresh.count()));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::experimental::TlsServerCredentials(options);
  if (creds == nullptr) return Internal("cannot create TLS server credentials");
  return creds;
}

Result<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, std::optional<Role> server_role, std::chrono::seconds refresh) {
  if (Status s = CheckTlsFiles(files); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, static_cast<unsigned>(refresh.count()));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // gRPC's default verifier then checks the chain and that a SAN matches the dialled host.
  options.set_verify_server_certs(true);
  if (server_role) {
    // Replaces the default host name verifier; ServerRoleVerifier runs it after the role check.
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<ServerRoleVerifier>(*server_role));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) return Internal("cannot create TLS channel credentials");
  return creds;
}

std::string PeerIdentity::Describe() const {
  if (!authenticated) return name + " (plaintext)";
  return name + " (" + (role ? RoleName(*role) : "no role") + ")";
}

PeerIdentity IdentifyPeer(const grpc::ServerContextBase& ctx) {
  PeerIdentity peer;
  peer.name = "anonymous";
  peer.address = ctx.peer();
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return peer;
  peer.authenticated = true;
  std::string cn = FirstValue(*auth, GRPC_X509_CN_PROPERTY_NAME);
  peer.name = cn.empty() ? "(no common name)" : cn;
  std::vector<std::string> uris;
  for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(v.data(), v.size());
  }
  peer.role = RoleFromUris(uris);
  peer.agent_id = AgentIdFromUris(uris);
  Result<std::optional<std::string>> team = TeamFromUris(uris);
  if (team.ok()) {
    peer.team = *team;
  } else {
    peer.team_error = team.status().message();
  }
  return peer;
}

std::string HostOf(const std::string& address) {
  size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

Status CheckPlaintextAllowed(const std::string& listen_address) {
  const std::string host = HostOf(listen_address);
  const std::string refuse =
      "--insecure refused on " + listen_address +
      ": plaintext gRPC would let anyone who reaches this address apply faults as root. "
      "Plaintext is allowed only on a loopback address (127.0.0.1, ::1, localhost) or on a "
      "sandbox address (10.77.0.0/24, inside a sandbox network namespace). Use mTLS instead: "
      "--tls-ca --tls-cert --tls-key (`faultline certs init DIR` makes development ones)";
  if (host == "localhost" || host == "::1") return Status::Ok();
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    uint32_t a = ntohl(v4.s_addr);
    if ((a >> 24) == 127) return Status::Ok();
    if (host.rfind(kSandboxPrefix, 0) == 0) {
      if (!InInitialNetworkNamespace()) return Status::Ok();
      return FailedPrecondition(refuse + " (" + host +
                                " is in the sandbox's subnet, but this process runs in the "
                                "machine's own network namespace, not a sandbox host)");
    }
  }
  return FailedPrecondition(refuse);
}

}  // namespace faultline
