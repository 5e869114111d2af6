#include "common/certificates.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/atomic_file.h"

namespace faultline {
namespace {

constexpr std::string_view kRolePrefix = "faultline:role:";
constexpr std::string_view kAgentIdPrefix = "faultline:agent:";
constexpr std::string_view kTeamPrefix = "faultline:team:";

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

// The OpenSSL error queue as text (and cleared), for messages.
std::string OpenSslError(const std::string& what) {
  std::string out = what;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += std::string(": ") + buf;
  }
  return out;
}

bool IsIpLiteral(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Result<std::string> ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return Internal(OpenSslError("PEM cert"));
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> ToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Internal(OpenSslError("PEM key"));
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<PKeyPtr> NewKey() {
  PKeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Internal(OpenSslError("cannot generate an EC P-256 key"));
  return key;
}

// Adds one X509v3 extension given in OpenSSL's config syntax ("CA:TRUE", "IP:10.0.0.1,DNS:x").
Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    return InvalidArgument(OpenSslError("certificate extension '" + value + "' rejected"));
  }
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return Internal(OpenSslError("cannot add extension"));
  return Status::Ok();
}

// A certificate with a random serial, subject CN, validity and public key; not yet signed.
Result<X509Ptr> NewCertificate(const std::string& cn, EVP_PKEY* key, std::chrono::seconds from,
                               std::chrono::seconds to) {
  X509Ptr cert(X509_new());
  if (!cert) return Internal(OpenSslError("X509_new"));
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return Internal(OpenSslError("RAND_bytes"));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  ASN1_INTEGER* asn = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (asn == nullptr) return Internal(OpenSslError("serial"));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(from.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(to.count()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("Faultline"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return InvalidArgument(OpenSslError("common name '" + cn + "' rejected"));
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return Internal(OpenSslError("X509_set_pubkey"));
  return cert;
}

Result<CertificateAndKey> Finish(X509* cert, EVP_PKEY* signing_key, EVP_PKEY* key) {
  if (X509_sign(cert, signing_key, EVP_sha256()) == 0) return Internal(OpenSslError("X509_sign"));
  Result<std::string> cert_pem = ToPem(cert);
  if (!cert_pem.ok()) return cert_pem.status();
  Result<std::string> key_pem = ToPem(key);
  if (!key_pem.ok()) return key_pem.status();
  return CertificateAndKey{*cert_pem, *key_pem};
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kOperator:
      return "operator";
    case Role::kController:
      return "controller";
    case Role::kAgent:
      return "agent";
    case Role::kViewer:
      return "viewer";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kOperator, Role::kController, Role::kAgent, Role::kViewer}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

std::string RoleUri(Role role) { return std::string(kRolePrefix) + RoleName(role); }

std::optional<Role> RoleFromUris(const std::vector<std::string>& uris) {
  std::optional<Role> found;
  for (const std::string& uri : uris) {
    if (uri.rfind(kRolePrefix, 0) != 0) continue;
    std::optional<Role> role = ParseRole(std::string_view(uri).substr(kRolePrefix.size()));
    if (!role || (found && *found != *role)) return std::nullopt;
    found = role;
  }
  return found;
}

bool IsValidAgentId(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string AgentIdUri(const std::string& agent_id) {
  return std::string(kAgentIdPrefix) + agent_id;
}

std::optional<std::string> AgentIdFromUris(const std::vector<std::string>& uris) {
  std::optional<std::string> found;
  for (const std::string& uri : uris) {
    if (uri.rfind(kAgentIdPrefix, 0) != 0) continue;
    std::string id = uri.substr(kAgentIdPrefix.size());
    if (!IsValidAgentId(id) || (found && *found != id)) return std::nullopt;
    found = id;
  }
  return found;
}

bool IsValidTeamName(std::string_view team) { return IsValidAgentId(team); }

std::string TeamUri(const std::string& team) { return std::string(kTeamPrefix) + team; }

Result<std::optional<std::string>> TeamFromUris(const std::vector<std::string>& uris) {
  std::optional<std::string> found;
  for (const std::string& uri : uris) {
    if (uri.rfind(kTeamPrefix, 0) != 0) continue;
    std::string team = uri.substr(kTeamPrefix.size());
    if (!IsValidTeamName(team)) {
      return InvalidArgument("the certificate's team '" + team +
                             "' is not a team name ([A-Za-z0-9._-]{1,63})");
    }
    if (found && *found != team) {
      return InvalidArgument("the certificate carries two teams ('" + *found + "', '" + team +
                             "')");
    }
    found = team;
  }
  return found;
}

Result<CertificateAndKey> CreateCertificateAuthority(const std::string& common_name,
                                                     std::chrono::seconds validity) {
  Result<PKeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  Result<X509Ptr> cert =
      NewCertificate(common_name, key->get(), std::chrono::minutes(-5), validity);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1) {
    return Internal(OpenSslError("issuer"));
  }
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (Status s = AddExtension(c, c, nid, value); !s.ok()) return s;
  }
  return Finish(c, key->get(), key->get());
}

Result<CertificateAndKey> IssueCertificate(const CertificateAndKey& ca,
                                           const CertificateRequest& request) {
  if (request.common_name.empty()) return InvalidArgument("a certificate needs a common name");
  BioPtr cert_bio(BIO_new_mem_buf(ca.cert_pem.data(), static_cast<int>(ca.cert_pem.size())));
  X509Ptr ca_cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  BioPtr key_bio(BIO_new_mem_buf(ca.key_pem.data(), static_cast<int>(ca.key_pem.size())));
  PKeyPtr ca_key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!ca_cert || !ca_key) return Internal(OpenSslError("cannot read the CA certificate or key"));

  Result<PKeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  Result<X509Ptr> cert =
      NewCertificate(request.common_name, key->get(), request.not_before, request.not_after);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(ca_cert.get())) != 1) {
    return Internal(OpenSslError("issuer"));
  }
  std::string sans;
  auto add_san = [&sans](const std::string& san) { sans += (sans.empty() ? "" : ",") + san; };
  if (request.role) add_san("URI:" + RoleUri(*request.role));
  if (request.agent_id) {
    if (!IsValidAgentId(*request.agent_id)) {
      return InvalidArgument("'" + *request.agent_id +
                             "' is not an agent id ([A-Za-z0-9._-]{1,63})");
    }
    add_san("URI:" + AgentIdUri(*request.agent_id));
  }
  if (request.team) {
    if (!IsValidTeamName(*request.team)) {
      return InvalidArgument("'" + *request.team + "' is not a team name ([A-Za-z0-9._-]{1,63})");
    }
    add_san("URI:" + TeamUri(*request.team));
  }
  for (const std::string& ip : request.ip_sans) {
    if (!IsIpLiteral(ip)) return InvalidArgument("'" + ip + "' is not an IP address");
    add_san("IP:" + ip);
  }
  for (const std::string& dns : request.dns_sans) {
    if (dns.empty() || dns.find_first_of(",:= \t\n") != std::string::npos) {
      return InvalidArgument("'" + dns + "' is not a DNS name");
    }
    add_san("DNS:" + dns);
  }
  std::string eku;
  if (request.server_auth) eku = "serverAuth";
  if (request.client_auth) eku += std::string(eku.empty() ? "" : ",") + "clientAuth";
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_authority_key_identifier, "keyid:always"},
  };
  if (!eku.empty()) extensions.push_back({NID_ext_key_usage, eku});
  if (!sans.empty()) extensions.push_back({NID_subject_alt_name, sans});
  for (const auto& [nid, value] : extensions) {
    if (Status s = AddExtension(c, ca_cert.get(), nid, value); !s.ok()) return s;
  }
  return Finish(c, ca_key.get(), key->get());
}

std::vector<std::string> DefaultAgentSans() { return {"127.0.0.1", "::1", "localhost"}; }

Status WriteDevCertificates(const std::string& dir, const DevCertificateOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!options.overwrite && fs::exists(fs::path(dir) / "ca.pem", ec)) {
    return AlreadyExists(dir +
                         "/ca.pem already exists; not replacing a CA (every certificate it "
                         "signed would stop working). Use another directory or --force.");
  }
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);

  // Agents serve (their Agent service) and are clients (dialling a faultline-controller); the
  // controller is the reverse. Both carry the agent SANs, so either can be dialled on them.
  CertificateRequest agent{"faultline-agent", Role::kAgent};
  agent.server_auth = true;
  CertificateRequest controller{"faultline-controller", Role::kController};
  controller.server_auth = true;
  std::vector<std::string> sans = DefaultAgentSans();
  sans.insert(sans.end(), options.extra_agent_sans.begin(), options.extra_agent_sans.end());
  for (const std::string& san : sans) {
    (IsIpLiteral(san) ? agent.ip_sans : agent.dns_sans).push_back(san);
    (IsIpLiteral(san) ? controller.ip_sans : controller.dns_sans).push_back(san);
  }
  CertificateRequest op{"faultline-operator", Role::kOperator};
  std::vector<std::pair<std::string, CertificateRequest>> requests = {
      {"agent", agent}, {"controller", controller}, {"operator", op}};
  for (const std::string& id : options.agent_ids) {
    if (!IsValidAgentId(id)) {
      return InvalidArgument("agent id '" + id + "': want [A-Za-z0-9._-]{1,63}");
    }
    for (const auto& [name, request] : requests) {
      if (name == "agent-" + id) return InvalidArgument("agent id '" + id + "' given twice");
    }
    CertificateRequest one = agent;
    one.common_name = id;
    one.agent_id = id;
    requests.emplace_back("agent-" + id, one);
  }

  Result<CertificateAndKey> ca =
      CreateCertificateAuthority("Faultline development CA", std::chrono::hours(24 * 3650));
  if (!ca.ok()) return ca.status();
  std::vector<std::pair<std::string, CertificateAndKey>> files = {{"ca", *ca}};
  for (const auto& [name, request] : requests) {
    Result<CertificateAndKey> issued = IssueCertificate(*ca, request);
    if (!issued.ok()) return issued.status();
    files.emplace_back(name, *issued);
  }
  // Keys first, so a watcher that sees a new certificate also finds its key.
  for (const auto& [name, pair] : files) {
    if (Status s = WriteFileAtomically(dir + "/" + name + "-key.pem", pair.key_pem, 0600);
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [name, pair] : files) {
    if (Status s = WriteFileAtomically(dir + "/" + name + ".pem", pair.cert_pem, 0644); !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace faultline
