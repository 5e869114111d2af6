#include "agent/workloads/workload_resolver.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "agent/workloads/cri_client.h"
#include "agent/workloads/docker_client.h"
#include "agent/workloads/netns_identity.h"
#include "common/faultspec/workload_selector.h"

namespace faultline::agent::workloads {
namespace {

bool IsSocket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::string PickSocket(const std::string& flag, const std::vector<std::string>& defaults) {
  if (flag == "none") return "";
  if (!flag.empty()) return flag;
  for (const std::string& p : defaults) {
    if (IsSocket(p)) return p;
  }
  return "";
}

}  // namespace

std::vector<std::string> DefaultDockerSockets() {
  return {"/run/docker.sock", "/var/run/docker.sock", "/run/podman/podman.sock"};
}

std::vector<std::string> DefaultCriSockets() {
  return {"/run/containerd/containerd.sock", "/run/crio/crio.sock"};
}

WorkloadResolver::WorkloadResolver(WorkloadResolverOptions options) : options_(std::move(options)) {
  docker_socket_ = PickSocket(options_.docker_socket, DefaultDockerSockets());
  cri_socket_ = PickSocket(options_.cri_socket, DefaultCriSockets());
  if (!docker_socket_.empty()) {
    DockerClientOptions o;
    o.socket_path = docker_socket_;
    o.deadline = options_.deadline;
    o.max_workloads = faultspec::kMaxWorkloadsPerAgent;
    docker_ = std::make_unique<DockerEngineClient>(o);
  }
  if (!cri_socket_.empty()) {
    CriClientOptions o;
    o.socket_path = cri_socket_;
    o.deadline = options_.deadline;
    o.max_workloads = faultspec::kMaxWorkloadsPerAgent;
    cri_ = std::make_unique<CriClient>(o);
  }
}

WorkloadResolver::~WorkloadResolver() = default;

std::map<std::string, std::string> WorkloadResolver::DescribeRuntimes() const {
  std::map<std::string, std::string> out;
  if (docker_) {
    auto v = docker_->Version();
    out["docker"] =
        "unix://" + docker_socket_ + " " + (v.ok() ? *v : "not answering: " + v.status().message());
  }
  if (cri_) {
    auto v = cri_->Version();
    out["cri"] =
        "unix://" + cri_socket_ + " " + (v.ok() ? *v : "not answering: " + v.status().message());
  }
  return out;
}

std::vector<pid_t> PidsInNetns(const NetnsIdentity& id, size_t max_pids) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    if (out.size() >= max_pids) break;
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    struct stat st {};
    if (::stat(("/proc/" + name + "/ns/net").c_str(), &st) != 0) continue;
    if (static_cast<uint64_t>(st.st_dev) == id.dev && static_cast<uint64_t>(st.st_ino) == id.ino) {
      out.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<Workload>> WorkloadResolver::ResolveHandle(const v1::WorkloadSelector& s) const {
  Workload w;
  if (!s.netns_path().empty()) {
    w.kind = WorkloadKind::kNetns;
    w.id = w.name = w.netns_path = s.netns_path();
    auto id = StatNetns(s.netns_path());
    if (!id.ok()) return id.status();
    w.netns = *id;
    w.pids = PidsInNetns(w.netns);
  } else if (!s.cgroup_path().empty()) {
    w.kind = WorkloadKind::kCgroup;
    w.id = w.name = w.cgroup_path = s.cgroup_path();
    struct stat st {};
    if (::stat(s.cgroup_path().c_str(), &st) != 0) {
      return NotFound("cgroup " + s.cgroup_path() + " does not exist");
    }
    auto pids = PidsOfCgroup(s.cgroup_path());
    if (!pids.ok()) return FailedPrecondition(pids.status().message());
    if (pids->empty()) {
      return FailedPrecondition("cgroup " + s.cgroup_path() +
                                " has no process, so no network namespace to act in");
    }
    w.pids = *pids;
    w.netns_path = "/proc/" + std::to_string(w.pids.front()) + "/ns/net";
    auto id = StatNetns(w.netns_path);
    if (!id.ok())
      return FailedPrecondition("cgroup " + s.cgroup_path() + ": " + id.status().message());
    w.netns = *id;
  } else {
    w.kind = WorkloadKind::kPid;
    w.id = w.name = std::to_string(s.pid());
    w.netns_path = "/proc/" + w.id + "/ns/net";
    auto id = StatNetns(w.netns_path);
    if (!id.ok()) {
      if (id.status().code() == StatusCode::kNotFound) {
        return NotFound("process " + w.id + " does not exist");
      }
      return id.status();
    }
    w.netns = *id;
    w.pids.push_back(static_cast<pid_t>(s.pid()));
    if (auto cg = CgroupOfPid(static_cast<pid_t>(s.pid())); cg.ok()) w.cgroup_path = *cg;
  }
  std::vector<Workload> out;
  out.push_back(std::move(w));
  return out;
}

Result<WorkloadResolver::Resolution> WorkloadResolver::Resolve(
    const v1::WorkloadSelector& selector) const {
  if (Status st = faultspec::ValidateWorkloadSelector(selector); !st.ok()) return st;
  Resolution r;
  if (faultspec::WorkloadSelectorIsHandle(selector)) {
    auto w = ResolveHandle(selector);
    if (!w.ok()) return w.status();
    r.workloads = std::move(*w);
  } else {
    const auto rt = selector.runtime();
    const bool want_docker = rt == v1::WorkloadSelector::DOCKER || rt == v1::WorkloadSelector::ANY;
    const bool want_cri = rt == v1::WorkloadSelector::CRI || rt == v1::WorkloadSelector::ANY;
    if (rt == v1::WorkloadSelector::DOCKER && !docker_) {
      return FailedPrecondition(
          "no Docker Engine API socket on this host (looked for /run/docker.sock, "
          "/var/run/docker.sock, /run/podman/podman.sock); start the agent with --docker-socket");
    }
    if (rt == v1::WorkloadSelector::CRI && !cri_) {
      return FailedPrecondition(
          "no CRI socket on this host (looked for /run/containerd/containerd.sock, "
          "/run/crio/crio.sock); start the agent with --cri-socket");
    }
    if (rt == v1::WorkloadSelector::ANY && !docker_ && !cri_) {
      return FailedPrecondition(
          "no container runtime socket on this host; start the agent with --docker-socket or "
          "--cri-socket");
    }
    Status first_error;
    int asked = 0, failed = 0;
    auto take = [&](const char* name, Result<std::vector<Workload>> got) {
      ++asked;
      if (!got.ok()) {
        ++failed;
        if (first_error.ok()) first_error = got.status();
        r.runtime_errors[name] = got.status().message();
        return;
      }
      for (Workload& w : *got) r.workloads.push_back(std::move(w));
    };
    if (want_docker && docker_) take("docker", docker_->List(selector));
    if (want_cri && cri_) take("cri", cri_->List(selector));
    if (asked > 0 && failed == asked) return first_error;
  }
  for (Workload& w : r.workloads) w.host = options_.host;
  std::sort(r.workloads.begin(), r.workloads.end(), [](const Workload& a, const Workload& b) {
    return std::tie(a.runtime, a.id) < std::tie(b.runtime, b.id);
  });
  if (r.workloads.size() > faultspec::kMaxWorkloadsPerAgent) {
    return ResourceExhausted(std::to_string(r.workloads.size()) + " workloads match, at most " +
                             std::to_string(faultspec::kMaxWorkloadsPerAgent) + " per agent");
  }
  return r;
}

v1::Workload WorkloadToProto(const Workload& w) {
  v1::Workload p;
  p.set_kind(WorkloadKindName(w.kind));
  p.set_runtime(w.runtime);
  p.set_id(w.id);
  p.set_name(w.name);
  p.set_pod_namespace(w.pod_namespace);
  for (const auto& [k, v] : w.labels) (*p.mutable_labels())[k] = v;
  for (pid_t pid : w.pids) p.add_pids(static_cast<uint32_t>(pid));
  p.set_netns_path(w.netns_path);
  p.set_netns_dev(w.netns.dev);
  p.set_netns_ino(w.netns.ino);
  p.set_cgroup_path(w.cgroup_path);
  p.set_host(w.host);
  return p;
}

Result<v1::ListWorkloadsResponse> ListWorkloads(const WorkloadResolver& resolver,
                                                const v1::WorkloadSelector& selector) {
  auto r = resolver.Resolve(selector);
  if (!r.ok()) return r.status();
  v1::ListWorkloadsResponse out;
  for (const Workload& w : r->workloads) *out.add_workloads() = WorkloadToProto(w);
  for (const auto& [k, v] : r->runtime_errors) (*out.mutable_runtime_errors())[k] = v;
  return out;
}

}  // namespace faultline::agent::workloads
