#include "agent/workloads/docker_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "agent/workloads/netns_identity.h"

namespace faultline::agent::workloads {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Body {
  std::string data;
  size_t limit = 0;
  bool overflow = false;
};

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<Body*>(user);
  const size_t n = size * nmemb;
  if (body->data.size() + n > body->limit) {
    body->overflow = true;
    return 0;  // makes curl fail the transfer with CURLE_WRITE_ERROR
  }
  body->data.append(ptr, n);
  return n;
}

// Keeps the value of the Server header ("Libpod/4.3.1 (linux)", "Docker/24.0.5 (linux)").
size_t ServerHeader(char* buf, size_t size, size_t nitems, void* user) {
  const size_t n = size * nitems;
  std::string_view line(buf, n);
  constexpr std::string_view kServer = "server:";
  if (line.size() > kServer.size() && line.size() < 512) {
    std::string head(line.substr(0, kServer.size()));
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (head == kServer) {
      std::string v(line.substr(kServer.size()));
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      *static_cast<std::string*>(user) = v;
    }
  }
  return n;
}

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Percent-encodes `s` for a query string.
std::string Escape(CURL* curl, const std::string& s) {
  char* e = curl_easy_escape(curl, s.data(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

}  // namespace

DockerEngineClient::DockerEngineClient(DockerClientOptions options) : options_(std::move(options)) {
  GlobalInitOnce();
}

Result<std::string> DockerEngineClient::Get(const std::string& path, Clock::time_point deadline,
                                            std::string* server) const {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) {
    return DeadlineExceeded("Docker Engine API at " + options_.socket_path + ": deadline of " +
                            std::to_string(options_.deadline.count()) + " ms passed");
  }
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Internal("curl_easy_init failed");
  Body body;
  body.limit = options_.max_response_bytes;
  const std::string url = "http://localhost" + path;
  curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, options_.socket_path.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(left));
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(left));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http");
  if (server != nullptr) {
    curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, ServerHeader);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, server);
  }
  const CURLcode rc = curl_easy_perform(curl.get());
  const std::string where = "Docker Engine API at " + options_.socket_path + " (GET " +
                            path.substr(0, path.find('?')) + ")";
  if (body.overflow) {
    return ResourceExhausted(where + ": answer larger than " +
                             std::to_string(options_.max_response_bytes) + " bytes");
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return DeadlineExceeded(where + ": no answer within " +
                            std::to_string(options_.deadline.count()) + " ms");
  }
  if (rc != CURLE_OK) {
    return Unavailable(where + ": " + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 404) return NotFound(where + ": 404 " + body.data.substr(0, 200));
  if (status != 200) {
    return Internal(where + ": HTTP " + std::to_string(status) + " " + body.data.substr(0, 200));
  }
  return std::move(body.data);
}

Result<std::string> DockerEngineClient::Version() const {
  // GET /_ping, not /version: Podman computes /version from a full host inspection (seconds);
  // the ping's Server header names the engine and its version at once.
  std::string server;
  auto body = Get("/_ping", Clock::now() + options_.deadline, &server);
  if (!body.ok()) return body.status();
  return server.empty() ? std::string("Docker Engine API (no Server header)") : server;
}

Result<std::vector<Workload>> DockerEngineClient::List(const v1::WorkloadSelector& selector) const {
  const Clock::time_point deadline = Clock::now() + options_.deadline;
  // The label and id filters are done by the engine; names and ids are compared exactly here (the
  // engine's name filter is a regular expression and its id filter a prefix match). The id filter
  // matters: an apply names its one container by id, and without it every apply lists every
  // container on the host (50 containers faulted at once made 50 lists of all of them).
  json filters = json::object();
  if (!selector.ids().empty()) {
    json ids = json::array();
    for (const std::string& id : selector.ids()) ids.push_back(id);
    filters["id"] = ids;
  }
  if (!selector.labels().empty()) {
    json labels = json::array();
    std::vector<std::pair<std::string, std::string>> sorted(selector.labels().begin(),
                                                            selector.labels().end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [k, v] : sorted) labels.push_back(k + "=" + v);
    filters["label"] = labels;
  }
  std::unique_ptr<CURL, void (*)(CURL*)> esc(curl_easy_init(), curl_easy_cleanup);
  if (!esc) return Internal("curl_easy_init failed");
  std::string path = "/v1.41/containers/json";
  if (!filters.empty()) path += "?filters=" + Escape(esc.get(), filters.dump());
  auto listed = Get(path, deadline);
  if (!listed.ok()) return listed.status();
  json list = json::parse(*listed, nullptr, false);
  if (!list.is_array()) return Internal("Docker Engine API containers/json: not a JSON array");

  std::vector<std::string> ids;
  for (const json& c : list) {
    if (!c.is_object() || !c.value("Id", json()).is_string()) continue;
    const std::string id = c["Id"].get<std::string>();
    if (!selector.ids().empty() &&
        std::find(selector.ids().begin(), selector.ids().end(), id) == selector.ids().end()) {
      continue;
    }
    if (!selector.names().empty()) {
      bool named = false;
      if (auto names = c.find("Names"); names != c.end() && names->is_array()) {
        for (const json& n : *names) {
          if (!n.is_string()) continue;
          std::string name = n.get<std::string>();
          if (!name.empty() && name.front() == '/') name.erase(0, 1);
          named = named || std::find(selector.names().begin(), selector.names().end(), name) !=
                               selector.names().end();
        }
      }
      if (!named) continue;
    }
    ids.push_back(id);
  }
  if (ids.size() > options_.max_workloads) {
    return ResourceExhausted("Docker Engine API at " + options_.socket_path + ": " +
                             std::to_string(ids.size()) + " containers match, at most " +
                             std::to_string(options_.max_workloads) + " are resolved");
  }
  std::vector<Workload> out;
  for (const std::string& id : ids) {
    auto inspected = Get("/v1.41/containers/" + Escape(esc.get(), id) + "/json", deadline);
    if (!inspected.ok()) {
      if (inspected.status().code() == StatusCode::kNotFound) continue;  // removed meanwhile
      return inspected.status();
    }
    json c = json::parse(*inspected, nullptr, false);
    if (!c.is_object()) return Internal("Docker Engine API containers/" + id + "/json: not JSON");
    Workload w;
    w.kind = WorkloadKind::kContainer;
    w.runtime = "docker";
    w.id = id;
    if (c.value("Name", json()).is_string()) {
      w.name = c["Name"].get<std::string>();
      if (!w.name.empty() && w.name.front() == '/') w.name.erase(0, 1);
    }
    if (auto cfg = c.find("Config"); cfg != c.end() && cfg->is_object()) {
      if (auto l = cfg->find("Labels"); l != cfg->end() && l->is_object()) {
        for (const auto& [k, v] : l->items()) {
          if (v.is_string()) w.labels[k] = v.get<std::string>();
        }
      }
    }
    pid_t pid = 0;
    if (auto st = c.find("State"); st != c.end() && st->is_object()) {
      if (st->value("Pid", json()).is_number_integer()) pid = (*st)["Pid"].get<pid_t>();
    }
    if (pid <= 0) continue;  // not running (exited between list and inspect)
    w.pids.push_back(pid);
    if (auto cg = CgroupOfPid(pid); cg.ok()) {
      w.cgroup_path = *cg;
      if (auto pids = PidsOfCgroup(*cg); pids.ok()) {
        for (pid_t p : *pids) {
          if (p != pid) w.pids.push_back(p);
        }
      }
    }
    const std::string proc_ns = "/proc/" + std::to_string(pid) + "/ns/net";
    auto proc_id = StatNetns(proc_ns);
    if (!proc_id.ok()) continue;  // the process is gone
    w.netns_path = proc_ns;
    w.netns = *proc_id;
    if (auto ns = c.find("NetworkSettings"); ns != c.end() && ns->is_object()) {
      if (ns->value("SandboxKey", json()).is_string()) {
        const std::string key = (*ns)["SandboxKey"].get<std::string>();
        // The runtime's bind mount survives the container's process; use it only when it is the
        // same namespace the process is in.
        if (auto key_id = StatNetns(key); !key.empty() && key_id.ok() && *key_id == *proc_id) {
          w.netns_path = key;
        }
      }
    }
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace faultline::agent::workloads
