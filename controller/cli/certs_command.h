#pragma once
// `faultline certs init DIR`, and the client-side TLS flags every verb that talks to agents takes.

#include <grpcpp/security/credentials.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "common/certificates.h"
#include "common/status.h"

namespace faultline::cli {

// Adds the `certs` verb (`certs init DIR [--san X]... [--force]`) to `app`; stores the exit code
// (0 ok, 2 usage or DIR already initialised, 4 I/O error) in *exit_code when it runs.
void AddCertsCommand(CLI::App& app, int* exit_code);

// --tls-ca/--tls-cert/--tls-key, --tls-dir, --insecure for a verb that talks to agents.
struct ClientTlsArgs {
  std::string ca;
  std::string cert;
  std::string key;
  std::string dir;  // DIR/ca.pem, DIR/operator.pem, DIR/operator-key.pem
  bool insecure = false;
};

// Registers the flags above on `verb`.
void AddClientTlsFlags(CLI::App* verb, ClientTlsArgs* args);

// The credentials to reach agents with, in this order: --insecure (plaintext; agents must have
// been started with --insecure); --tls-ca/--tls-cert/--tls-key (all three); --tls-dir; the
// sandbox's operator certificate when the sandbox is up. INVALID_ARGUMENT for a partial or
// conflicting set of flags or unusable files; FAILED_PRECONDITION when nothing applies.
// Over mTLS the server must present a certificate of `server_role` (agent when dialling agents,
// controller for the controller verbs).
Result<std::shared_ptr<grpc::ChannelCredentials>> ResolveClientCredentials(
    const ClientTlsArgs& args, Role server_role);

}  // namespace faultline::cli
