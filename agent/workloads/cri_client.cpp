#include "agent/workloads/cri_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "agent/workloads/netns_identity.h"
#include "cri_api/runtime_v1.grpc.pb.h"

namespace faultline::agent::workloads {
namespace {

// gRPC deadlines take the system clock.
using Clock = std::chrono::system_clock;

Status FromGrpc(const grpc::Status& s, const std::string& where) {
  const std::string m = where + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return DeadlineExceeded(m);
    case grpc::StatusCode::UNAVAILABLE:
      return Unavailable(m);
    case grpc::StatusCode::UNIMPLEMENTED:
      return Unimplemented(m);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return ResourceExhausted(m);
    case grpc::StatusCode::NOT_FOUND:
      return NotFound(m);
    default:
      return Internal(m);
  }
}

}  // namespace

void ParseCriSandboxInfo(const std::string& info_json, pid_t* pid, std::string* netns_path) {
  using json = nlohmann::json;
  json j = json::parse(info_json, nullptr, false);
  if (!j.is_object()) return;
  if (j.value("pid", json()).is_number_integer()) *pid = j["pid"].get<pid_t>();
  auto spec = j.find("runtimeSpec");
  if (spec == j.end() || !spec->is_object()) return;
  auto linux = spec->find("linux");
  if (linux == spec->end() || !linux->is_object()) return;
  auto nss = linux->find("namespaces");
  if (nss == linux->end() || !nss->is_array()) return;
  for (const json& ns : *nss) {
    if (ns.is_object() && ns.value("type", json()) == "network" &&
        ns.value("path", json()).is_string()) {
      *netns_path = ns["path"].get<std::string>();
    }
  }
}

CriClient::CriClient(CriClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<size_t>(options_.max_response_bytes, std::numeric_limits<int>::max())));
  channel_ = grpc::CreateCustomChannel("unix:" + options_.socket_path,
                                       grpc::InsecureChannelCredentials(), args);
}

CriClient::~CriClient() = default;

Result<std::string> CriClient::Version() const {
  auto stub = runtime::v1::RuntimeService::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(Clock::now() + options_.deadline);
  runtime::v1::VersionRequest req;
  req.set_version("v1");
  runtime::v1::VersionResponse resp;
  grpc::Status s = stub->Version(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, "CRI at " + options_.socket_path + " (Version)");
  return resp.runtime_name() + " " + resp.runtime_version();
}

Result<std::vector<Workload>> CriClient::List(const v1::WorkloadSelector& selector) const {
  const Clock::time_point deadline = Clock::now() + options_.deadline;
  auto stub = runtime::v1::RuntimeService::NewStub(channel_);
  const std::string where = "CRI at " + options_.socket_path;
  runtime::v1::ListPodSandboxRequest req;
  req.mutable_filter()->mutable_state()->set_state(runtime::v1::SANDBOX_READY);
  for (const auto& [k, v] : selector.labels()) {
    (*req.mutable_filter()->mutable_label_selector())[k] = v;
  }
  if (selector.ids_size() == 1) req.mutable_filter()->set_id(selector.ids(0));
  runtime::v1::ListPodSandboxResponse listed;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status s = stub->ListPodSandbox(&ctx, req, &listed);
    if (!s.ok()) return FromGrpc(s, where + " (ListPodSandbox)");
  }
  std::vector<const runtime::v1::PodSandbox*> pods;
  for (const runtime::v1::PodSandbox& p : listed.items()) {
    if (p.state() != runtime::v1::SANDBOX_READY) continue;
    if (!selector.ids().empty() &&
        std::find(selector.ids().begin(), selector.ids().end(), p.id()) == selector.ids().end()) {
      continue;
    }
    if (!selector.names().empty() && std::find(selector.names().begin(), selector.names().end(),
                                               p.metadata().name()) == selector.names().end()) {
      continue;
    }
    if (!selector.pod_namespace().empty() &&
        p.metadata().namespace_() != selector.pod_namespace()) {
      continue;
    }
    // The runtime's label filter is trusted only as far as it goes: check again here.
    bool labels_match = true;
    for (const auto& [k, v] : selector.labels()) {
      auto it = p.labels().find(k);
      labels_match = labels_match && it != p.labels().end() && it->second == v;
    }
    if (labels_match) pods.push_back(&p);
  }
  if (pods.size() > options_.max_workloads) {
    return ResourceExhausted(where + ": " + std::to_string(pods.size()) + " pods match, at most " +
                             std::to_string(options_.max_workloads) + " are resolved");
  }
  std::vector<Workload> out;
  for (const runtime::v1::PodSandbox* p : pods) {
    runtime::v1::PodSandboxStatusRequest sreq;
    sreq.set_pod_sandbox_id(p->id());
    sreq.set_verbose(true);
    runtime::v1::PodSandboxStatusResponse status;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status s = stub->PodSandboxStatus(&ctx, sreq, &status);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // removed meanwhile
    if (!s.ok()) return FromGrpc(s, where + " (PodSandboxStatus " + p->id() + ")");
    Workload w;
    w.kind = WorkloadKind::kPod;
    w.runtime = "cri";
    w.id = p->id();
    w.name = p->metadata().name();
    w.pod_namespace = p->metadata().namespace_();
    w.labels.insert(p->labels().begin(), p->labels().end());
    pid_t pid = 0;
    std::string netns_path;
    if (auto it = status.info().find("info"); it != status.info().end()) {
      ParseCriSandboxInfo(it->second, &pid, &netns_path);
    }
    if (pid > 0) {
      w.pids.push_back(pid);
      if (auto cg = CgroupOfPid(pid); cg.ok()) {
        // The sandbox's cgroup is the pause container's; the pod's cgroup is its parent.
        w.cgroup_path = *cg;
      }
    }
    if (netns_path.empty() && pid > 0) netns_path = "/proc/" + std::to_string(pid) + "/ns/net";
    if (netns_path.empty()) {
      return FailedPrecondition(where + ": pod " + w.pod_namespace + "/" + w.name +
                                " has no network namespace path in its verbose status (a pod "
                                "on the node's network?)");
    }
    auto ident = StatNetns(netns_path);
    if (!ident.ok()) {
      if (status.status().state() != runtime::v1::SANDBOX_READY) continue;
      return FailedPrecondition(where + ": pod " + w.pod_namespace + "/" + w.name + ": " +
                                ident.status().message());
    }
    w.netns_path = netns_path;
    w.netns = *ident;
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace faultline::agent::workloads
