#include "controller/cli/certs_command.h"

#include <grpcpp/security/credentials.h>

#include <filesystem>
#include <iostream>

#include "common/atomic_file.h"
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

struct CertsIssueArgs {
  std::string dir;
  std::string role;
  std::string name;
  std::string team;
  std::string out;
};

// `faultline certs issue DIR --role viewer|operator --name CN [--team T] [--out PREFIX]`: a client
// certificate for a person or a script, signed by DIR's CA.
int CertsIssue(const CertsIssueArgs& a) {
  std::optional<Role> role = ParseRole(a.role);
  if (!role || (*role != Role::kViewer && *role != Role::kOperator)) {
    std::cerr << "faultline: --role must be viewer or operator, not '" << a.role << "'\n";
    return kExitUsage;
  }
  if (!a.team.empty() && !IsValidTeamName(a.team)) {
    std::cerr << "faultline: --team '" << a.team << "' is not a team name ([A-Za-z0-9._-]{1,63})\n";
    return kExitUsage;
  }
  CertificateAndKey ca;
  for (auto [path, into] : {std::pair{a.dir + "/ca.pem", &ca.cert_pem},
                            std::pair{a.dir + "/ca-key.pem", &ca.key_pem}}) {
    Result<std::string> text = ReadFileToString(path);
    if (!text.ok()) {
      std::cerr << "faultline: " << text.status().message() << "\n";
      return kExitUsage;
    }
    *into = *text;
  }
  CertificateRequest request{a.name, role};
  if (!a.team.empty()) request.team = a.team;
  Result<CertificateAndKey> issued = IssueCertificate(ca, request);
  if (!issued.ok()) {
    std::cerr << "faultline: " << issued.status().message() << "\n";
    return issued.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitInfra;
  }
  const std::string prefix = a.out.empty() ? a.dir + "/" + a.name : a.out;
  if (Status s = WriteFileAtomically(prefix + "-key.pem", issued->key_pem, 0600); !s.ok()) {
    std::cerr << "faultline: " << s.message() << "\n";
    return kExitInfra;
  }
  if (Status s = WriteFileAtomically(prefix + ".pem", issued->cert_pem, 0644); !s.ok()) {
    std::cerr << "faultline: " << s.message() << "\n";
    return kExitInfra;
  }
  std::cout << prefix << ".pem " << prefix << "-key.pem: role " << a.role
            << (a.team.empty() ? std::string(", no team") : ", team " + a.team) << ", CN " << a.name
            << "\n";
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

  static CertsIssueArgs issue_args;
  auto* issue = certs->add_subcommand(
      "issue",
      "Issue a client certificate for a person or script, signed by the CA in DIR: role viewer "
      "(read only) or operator, optionally with a team (faultline:team:T) for the controller's "
      "team policy. Writes PREFIX.pem and PREFIX-key.pem (default DIR/NAME).");
  issue->add_option("dir", issue_args.dir, "Directory holding ca.pem and ca-key.pem")->required();
  issue->add_option("--role", issue_args.role, "viewer or operator")->required();
  issue->add_option("--name", issue_args.name, "Common name: the identity the audit log shows")
      ->required();
  issue->add_option("--team", issue_args.team, "Team ([A-Za-z0-9._-]{1,63})");
  issue->add_option("--out", issue_args.out, "Output prefix (default DIR/NAME)");
  issue->callback([exit_code] { *exit_code = CertsIssue(issue_args); });
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
