#include "common/tls.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/certificates.h"

namespace faultline {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/tls_test.XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    path_ = mkdtemp(buf.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RoleTest, RoleComesFromExactlyOneFaultlineRoleUri) {
  EXPECT_EQ(RoleFromUris({"faultline:role:operator"}), Role::kOperator);
  EXPECT_EQ(RoleFromUris({"spiffe://x/y", "faultline:role:controller"}), Role::kController);
  EXPECT_EQ(RoleFromUris({"faultline:role:agent", "faultline:role:agent"}), Role::kAgent);
  EXPECT_EQ(RoleFromUris({}), std::nullopt);
  EXPECT_EQ(RoleFromUris({"faultline:role:root"}), std::nullopt);
  EXPECT_EQ(RoleFromUris({"faultline:role:agent", "faultline:role:operator"}), std::nullopt);
}

TEST(PlaintextPolicyTest, LoopbackAllowedWildcardAndOtherAddressesRefused) {
  EXPECT_TRUE(CheckPlaintextAllowed("127.0.0.1:7070").ok());
  EXPECT_TRUE(CheckPlaintextAllowed("127.3.4.5:0").ok());
  EXPECT_TRUE(CheckPlaintextAllowed("[::1]:7070").ok());
  EXPECT_TRUE(CheckPlaintextAllowed("localhost:7070").ok());
  for (const char* address : {"0.0.0.0:7070", "[::]:7070", "192.168.1.5:7070", "10.77.1.10:7070",
                              "agent.example.com:7070", ":7070"}) {
    Status s = CheckPlaintextAllowed(address);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << address;
    EXPECT_NE(s.message().find("--insecure refused"), std::string::npos) << s.message();
  }
}

TEST(CertificatesTest, CertsInitWritesEveryRoleAndNeverReplacesACaByAccident) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/certs";
  DevCertificateOptions options;
  options.extra_agent_sans = {"10.77.0.10", "agent.internal"};
  ASSERT_TRUE(WriteDevCertificates(dir, options).ok());
  for (const char* name : {"ca", "agent", "controller", "operator"}) {
    struct stat st {};
    ASSERT_EQ(stat((dir + "/" + name + "-key.pem").c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
    if (std::string(name) != "ca") {
      EXPECT_TRUE(
          CheckTlsFiles({dir + "/ca.pem", dir + "/" + name + ".pem", dir + "/" + name + "-key.pem"})
              .ok())
          << name;
    }
  }
  // The agent certificate names the addresses it serves and carries its role.
  std::string pem = ReadAll(dir + "/agent.pem");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "10.77.0.10", 0), 1);
  EXPECT_EQ(X509_check_host(cert, "agent.internal", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_ip_asc(cert, "10.77.0.11", 0), 1);
  X509_free(cert);

  std::string ca_before = ReadAll(dir + "/ca.pem");
  Status again = WriteDevCertificates(dir, options);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadAll(dir + "/ca.pem"), ca_before);
}

TEST(CertificatesTest, BadSansAreRejected) {
  auto ca = CreateCertificateAuthority("ca", std::chrono::hours(1));
  ASSERT_TRUE(ca.ok());
  CertificateRequest bad_ip{"x", Role::kAgent};
  bad_ip.ip_sans = {"10.77.0.300"};
  EXPECT_EQ(IssueCertificate(*ca, bad_ip).status().code(), StatusCode::kInvalidArgument);
  CertificateRequest bad_dns{"x", Role::kAgent};
  bad_dns.dns_sans = {"a,URI:faultline:role:operator"};
  EXPECT_EQ(IssueCertificate(*ca, bad_dns).status().code(), StatusCode::kInvalidArgument);
}

TEST(TlsFilesTest, MissingFilesAndMismatchedKeyAreClearErrors) {
  TempDir tmp;
  ASSERT_TRUE(WriteDevCertificates(tmp.path(), {}).ok());
  const std::string d = tmp.path();
  Status missing = CheckTlsFiles({d + "/ca.pem", d + "/nope.pem", d + "/agent-key.pem"});
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("nope.pem"), std::string::npos) << missing.message();
  Status mismatch = CheckTlsFiles({d + "/ca.pem", d + "/agent.pem", d + "/operator-key.pem"});
  EXPECT_EQ(mismatch.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.message().find("does not belong"), std::string::npos) << mismatch.message();
  Status not_pem = CheckTlsFiles({d + "/ca-key.pem", d + "/agent.pem", d + "/agent-key.pem"});
  EXPECT_EQ(not_pem.code(), StatusCode::kInvalidArgument) << not_pem.message();
  EXPECT_FALSE(
      MakeServerCredentials({d + "/ca.pem", d + "/agent.pem", d + "/operator-key.pem"}).ok());
}

}  // namespace
}  // namespace faultline
