#include "controller/cli/certs_command.h"

#include <grpcpp/security/credentials.h>

#include <filesystem>
#include <iostream>

#include "common/certificates.h"
#include "common/tls.h"
#include "controller/sandbox/sandbox.h"

namespace faultline::cli {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInfra = 4;

struct CertsInitArgs {
  std::string dir;
  std::vector<std::string> sans;
  std::vector<std::string> agent_ids;
  bool force = false;
};

int CertsInit(const CertsInitArgs& a) {
  DevCertificateOptions options;
  // The sandbox's agent addresses come first, so `certs init` output works with the sandbox too.
  for (const auto& h : sandbox::SandboxHosts()) options.extra_agent_sans.push_back(h.address);
  options.extra_agent_sans.insert(options.extra_agent_sans.end(), a.sans.begin(), a.sans.end());
  options.agent_ids = a.agent_ids;
  options.overwrite = a.force;
  Status s = WriteDevCertificates(a.dir, options);
  if (!s.ok()) {
    std::cerr << "faultline: " << s.message() << "\n";
    return (s.code() == StatusCode::kAlreadyExists || s.code() == StatusCode::kInvalidArgument)
               ? kExitUsage
               : kExitInfra;
  }
  std::string sans;
  for (const auto& san : DefaultAgentSans()) sans += (sans.empty() ? "" : ", ") + san;
  for (const auto& san : options.extra_agent_sans) sans += ", " + san;
  std::cout << "development CA and certificates written to " << a.dir << ":\n"
            << "  ca.pem ca-key.pem                  CA (keep ca-key.pem private)\n"
            << "  agent.pem agent-key.pem            role agent; SANs " << sans << "\n"
            << "  controller.pem controller-key.pem  role controller\n"
            << "  operator.pem operator-key.pem      role operator\n";
  for (const std::string& id : a.agent_ids) {
    std::cout << "  agent-" << id << ".pem agent-" << id << "-key.pem  role agent, agent id " << id
              << " (for `faultline-agent --name " << id << " --controller ...`)\n";
  }
  std::cout << "agent:  faultline-agent --tls-ca " << a.dir << "/ca.pem --tls-cert " << a.dir
            << "/agent.pem --tls-key " << a.dir << "/agent-key.pem ...\n"
            << "client: faultline run --tls-dir " << a.dir << " EXPERIMENT.yaml\n";
  return 0;
}

}  // namespace

void AddCertsCommand(CLI::App& app, int* exit_code) {
  auto* certs = app.add_subcommand("certs", "Development certificates for mTLS");
  certs->require_subcommand(1);
  static CertsInitArgs args;
  auto* init = certs->add_subcommand(
      "init",
      "Create a development CA and certificates for each role (agent, controller, operator) in "
      "DIR. For production, issue certificates from your own CA with the same role URI SANs "
      "(faultline:role:operator|controller|agent).");
  init->add_option("dir", args.dir, "Directory to create (mode 0700)")->required();
  init->add_option("--san", args.sans,
                   "Extra subject alternative name for agent.pem (IP or DNS name), repeatable");
  init->add_option("--agent", args.agent_ids,
                   "Also issue agent-ID.pem carrying this agent id (faultline:agent:ID), for an "
                   "agent that attaches to a faultline-controller with --name ID; repeatable. "
                   "The controller registers an agent only under the id its certificate carries.");
  init->add_flag("--force", args.force, "Replace an existing CA in DIR");
  init->callback([exit_code] { *exit_code = CertsInit(args); });
}

void AddClientTlsFlags(CLI::App* verb, ClientTlsArgs* args) {
  verb->add_option("--tls-ca", args->ca, "CA (PEM) that signs the agents' certificates");
  verb->add_option("--tls-cert", args->cert, "Client certificate (PEM), role operator/controller");
  verb->add_option("--tls-key", args->key, "Client private key (PEM)");
  verb->add_option("--tls-dir", args->dir,
                   "Directory from `faultline certs init`: uses ca.pem, operator.pem, "
                   "operator-key.pem");
  verb->add_flag("--insecure", args->insecure,
                 "Plaintext to agents started with --insecure (loopback/sandbox only)");
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ResolveClientCredentials(
    const ClientTlsArgs& args, Role server_role) {
  const bool any_file = !args.ca.empty() || !args.cert.empty() || !args.key.empty();
  if (args.insecure) {
    if (any_file || !args.dir.empty()) {
      return InvalidArgument("--insecure and --tls-* exclude each other: choose one");
    }
    return grpc::InsecureChannelCredentials();
  }
  TlsFiles files;
  if (any_file) {
    if (args.ca.empty() || args.cert.empty() || args.key.empty() || !args.dir.empty()) {
      return InvalidArgument("give all three of --tls-ca, --tls-cert, --tls-key (or --tls-dir)");
    }
    files = {args.ca, args.cert, args.key};
  } else if (!args.dir.empty()) {
    files = {args.dir + "/ca.pem", args.dir + "/operator.pem", args.dir + "/operator-key.pem"};
  } else if (sandbox::SandboxIsUp() &&
             std::filesystem::exists(sandbox::SandboxCertsDir() + "/operator.pem")) {
    const std::string d = sandbox::SandboxCertsDir();
    files = {d + "/ca.pem", d + "/operator.pem", d + "/operator-key.pem"};
  } else {
    return FailedPrecondition(
        "agents are reached over mTLS: pass --tls-ca, --tls-cert and --tls-key (or --tls-dir DIR "
        "from `faultline certs init DIR`); with the sandbox up its certificates are used "
        "automatically");
  }
  Result<std::shared_ptr<grpc::ChannelCredentials>> creds =
      MakeChannelCredentials(files, server_role);
  if (!creds.ok()) return InvalidArgument(creds.status().message());
  return creds;
}

}  // namespace faultline::cli
