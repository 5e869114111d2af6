// A throwaway certificate authority for the controller's mTLS tests (gRPC and the console):
// the CA and every certificate it issues are written as PEM files in one directory, ready for
// TlsFiles or an HTTPS client. Test-only (gtest assertions); header-only.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/tls.h"

namespace faultline::testing {

class TestCertificates {
 public:
  // Creates the CA (valid 24 h) and writes its certificate as DIR/`ca_file`. `dir` must exist
  // and outlive this. A failure is a gtest failure (fatal for the caller's
  // ASSERT_NO_FATAL_FAILURE).
  void Init(const std::string& dir, const std::string& ca_name = "test CA",
            const std::string& ca_file = "ca.pem") {
    dir_ = dir;
    ca_file_ = ca_file;
    auto ca = CreateCertificateAuthority(ca_name, std::chrono::hours(24));
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = *ca;
    Write(ca_file_, ca_.cert_pem);
  }

  // Issues `request` from this CA and writes DIR/<name>.pem and DIR/<name>-key.pem (0600).
  void Issue(const std::string& name, const CertificateRequest& request) {
    auto issued = IssueCertificate(ca_, request);
    ASSERT_TRUE(issued.ok()) << issued.status().ToString();
    Write(name + "-key.pem", issued->key_pem);
    Write(name + ".pem", issued->cert_pem);
  }

  // A server certificate request for a listener on 127.0.0.1 (IP SAN, server auth).
  static CertificateRequest LoopbackServer(const std::string& common_name, Role role) {
    CertificateRequest request(common_name, role);
    request.ip_sans = {"127.0.0.1"};
    request.server_auth = true;
    return request;
  }

  // This CA's certificate and `name`'s certificate and key, as written by Issue.
  TlsFiles Files(const std::string& name) const {
    return {Path(ca_file_), Path(name + ".pem"), Path(name + "-key.pem")};
  }
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }

 private:
  void Write(const std::string& file, const std::string& content) {
    ASSERT_TRUE(WriteFileAtomically(Path(file), content, 0600).ok()) << Path(file);
  }

  std::string dir_;
  std::string ca_file_;
  CertificateAndKey ca_;
};

}  // namespace faultline::testing
