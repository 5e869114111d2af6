// Workload discovery without a container runtime: the Docker Engine API client against a fake
// engine on a unix socket (canned JSON; the container's pid is this test process, so its netns
// identity is real), the CRI verbose-info reader, and the runtime-free handles.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/workloads/cri_client.h"
#include "agent/workloads/docker_client.h"
#include "agent/workloads/netns_identity.h"
#include "agent/workloads/workload_resolver.h"

namespace faultline::agent::workloads {
namespace {

// A one-connection-at-a-time HTTP/1.1 server on a unix socket: `handler(path)` gives the body
// (status 200), or "" for 404; `hang` makes it read the request and never answer.
class FakeEngine {
 public:
  explicit FakeEngine(std::function<std::string(const std::string&)> handler)
      : handler_(std::move(handler)) {
    char tmpl[] = "/tmp/fl-fake-engine-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/engine.sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeEngine() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  std::atomic<bool> hang{false};
  std::atomic<int> requests{0};
  std::string last_path;

 private:
  void Serve() {
    while (true) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      ++requests;
      const size_t sp1 = req.find(' ');
      const std::string path = req.substr(sp1 + 1, req.find(' ', sp1 + 1) - sp1 - 1);
      last_path = path;
      if (hang) {
        // Hold the connection until the client gives up (it closes; read returns 0).
        while (::read(c, buf, sizeof(buf)) > 0) {
        }
        ::close(c);
        continue;
      }
      std::string body = handler_(path);
      std::string status = body.empty() ? "404 Not Found" : "200 OK";
      std::string resp =
          "HTTP/1.1 " + status +
          "\r\nServer: Libpod/4.3.1 (linux)\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      size_t off = 0;
      while (off < resp.size()) {
        ssize_t n = ::write(c, resp.data() + off, resp.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }

  std::function<std::string(const std::string&)> handler_;
  std::string dir_, path_;
  int fd_ = -1;
  std::thread thread_;
};

// Two containers: "orders-1" (app=orders) and "kv-1" (app=kv), both "running" as this process.
std::string Engine(const std::string& path) {
  const std::string pid = std::to_string(::getpid());
  if (path.rfind("/v1.41/containers/json", 0) == 0) {
    // The engine filters by label; a real one would. Here: only the orders filter is honoured.
    if (path.find("app%3Dorders") != std::string::npos) {
      return R"([{"Id":"aaa111","Names":["/orders-1"],"Labels":{"app":"orders"}}])";
    }
    if (path.find("filters") != std::string::npos) return "[]";
    return R"([{"Id":"aaa111","Names":["/orders-1"]},{"Id":"bbb222","Names":["/kv-1"]}])";
  }
  if (path == "/v1.41/containers/aaa111/json") {
    return R"({"Id":"aaa111","Name":"/orders-1","Config":{"Labels":{"app":"orders"}},"State":{"Pid":)" +
           pid + R"(},"NetworkSettings":{"SandboxKey":""}})";
  }
  if (path == "/v1.41/containers/bbb222/json") {
    return R"({"Id":"bbb222","Name":"/kv-1","Config":{"Labels":{"app":"kv"}},"State":{"Pid":)" +
           pid + R"(},"NetworkSettings":{"SandboxKey":"/proc/self/ns/net"}})";
  }
  if (path == "/_ping") return "OK";
  return "";
}

v1::WorkloadSelector Labels(const std::string& k, const std::string& v) {
  v1::WorkloadSelector s;
  s.set_runtime(v1::WorkloadSelector::DOCKER);
  (*s.mutable_labels())[k] = v;
  return s;
}

DockerClientOptions To(const FakeEngine& e) {
  DockerClientOptions o;
  o.socket_path = e.path();
  o.deadline = std::chrono::milliseconds(2000);
  return o;
}

TEST(DockerEngineClientTest, ListsByLabelWithPidAndNetnsIdentity) {
  FakeEngine engine(Engine);
  DockerEngineClient client(To(engine));
  auto got = client.List(Labels("app", "orders"));
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 1u);
  const Workload& w = got->front();
  EXPECT_EQ(w.kind, WorkloadKind::kContainer);
  EXPECT_EQ(w.runtime, "docker");
  EXPECT_EQ(w.id, "aaa111");
  EXPECT_EQ(w.name, "orders-1");
  EXPECT_EQ(w.labels.at("app"), "orders");
  ASSERT_FALSE(w.pids.empty());
  EXPECT_EQ(w.pids.front(), ::getpid());
  auto own = StatNetns("/proc/self/ns/net");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(w.netns, *own);
  EXPECT_EQ(w.netns_path, "/proc/" + std::to_string(::getpid()) + "/ns/net");
}

TEST(DockerEngineClientTest, ALabelMatchingNothingIsAnEmptyListNotAnError) {
  FakeEngine engine(Engine);
  DockerEngineClient client(To(engine));
  auto got = client.List(Labels("app", "nothing"));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(got->empty());
}

TEST(DockerEngineClientTest, NamesAreMatchedExactlyNotAsPatterns) {
  FakeEngine engine(Engine);
  DockerEngineClient client(To(engine));
  v1::WorkloadSelector s;
  s.set_runtime(v1::WorkloadSelector::DOCKER);
  s.add_names("kv-1");
  auto got = client.List(s);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front().id, "bbb222");
  // A SandboxKey naming the same namespace as the process is preferred as the netns path.
  EXPECT_EQ(got->front().netns_path, "/proc/self/ns/net");
  v1::WorkloadSelector prefix;
  prefix.set_runtime(v1::WorkloadSelector::DOCKER);
  prefix.add_names("kv");  // the engine's name filter would match this; ours does not
  auto none = client.List(prefix);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// An apply names its container by id: the engine is asked for that id only (its filter is a
// prefix match, as Docker's and Podman's are), and the answer is still compared exactly. Without
// the filter every apply listed every container on the host.
TEST(DockerEngineClientTest, IdsAreFilteredByTheEngineAndComparedExactly) {
  std::mutex mu;
  std::vector<std::string> lists;
  FakeEngine engine([&](const std::string& path) -> std::string {
    if (path.rfind("/v1.41/containers/json", 0) == 0) {
      std::lock_guard lock(mu);
      lists.push_back(path);
      // {"id":["aaa..."]} percent-encoded: a prefix of aaa111 matches it, as in a real engine.
      if (path.find("%22id%22%3A%5B%22aaa") != std::string::npos) {
        return R"([{"Id":"aaa111","Names":["/orders-1"]}])";
      }
      if (path.find("filters") != std::string::npos) return "[]";
    }
    return Engine(path);
  });
  DockerEngineClient client(To(engine));
  v1::WorkloadSelector s;
  s.set_runtime(v1::WorkloadSelector::DOCKER);
  s.add_ids("aaa111");
  auto got = client.List(s);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front().name, "orders-1");
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_NE(lists[0].find("%22id%22%3A%5B%22aaa111%22%5D"), std::string::npos) << lists[0];
  }
  v1::WorkloadSelector prefix;
  prefix.set_runtime(v1::WorkloadSelector::DOCKER);
  prefix.add_ids("aaa");  // the engine's prefix match finds aaa111; an exact id does not
  auto none = client.List(prefix);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_TRUE(none->empty());
}

TEST(DockerEngineClientTest, VersionNamesTheEngine) {
  FakeEngine engine(Engine);
  DockerEngineClient client(To(engine));
  auto v = client.Version();
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(*v, "Libpod/4.3.1 (linux)");
}

TEST(DockerEngineClientTest, AnEngineThatNeverAnswersHitsTheDeadline) {
  FakeEngine engine(Engine);
  engine.hang = true;
  DockerClientOptions o = To(engine);
  o.deadline = std::chrono::milliseconds(200);
  DockerEngineClient client(o);
  auto got = client.List(Labels("app", "orders"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded) << got.status().message();
}

TEST(DockerEngineClientTest, AnOversizedAnswerIsRefused) {
  FakeEngine engine([](const std::string&) { return "[" + std::string(100000, ' ') + "]"; });
  DockerClientOptions o = To(engine);
  o.max_response_bytes = 1000;
  DockerEngineClient client(o);
  auto got = client.List(Labels("app", "orders"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kResourceExhausted) << got.status().message();
}

TEST(DockerEngineClientTest, NoSocketIsUnavailable) {
  DockerClientOptions o;
  o.socket_path = "/nonexistent/docker.sock";
  DockerEngineClient client(o);
  auto got = client.List(Labels("app", "orders"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status().message();
}

TEST(CriSandboxInfoTest, ReadsPidAndNetworkNamespacePath) {
  pid_t pid = 0;
  std::string path;
  ParseCriSandboxInfo(
      R"({"pid": 4242, "runtimeSpec": {"linux": {"namespaces": [{"type": "pid"},
          {"type": "network", "path": "/var/run/netns/cni-1234"}, {"type": "ipc"}]}}})",
      &pid, &path);
  EXPECT_EQ(pid, 4242);
  EXPECT_EQ(path, "/var/run/netns/cni-1234");
  pid_t p2 = 0;
  std::string path2;
  ParseCriSandboxInfo("not json", &p2, &path2);
  EXPECT_EQ(p2, 0);
  EXPECT_EQ(path2, "");
}

WorkloadResolver NoRuntimes() {
  WorkloadResolverOptions o;
  o.docker_socket = "none";
  o.cri_socket = "none";
  o.host = "h1";
  return WorkloadResolver(o);
}

TEST(WorkloadResolverTest, PidHandleResolvesToItsNetnsAndCgroup) {
  WorkloadResolver r = NoRuntimes();
  v1::WorkloadSelector s;
  s.set_pid(static_cast<uint32_t>(::getpid()));
  auto got = r.Resolve(s);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->workloads.size(), 1u);
  const Workload& w = got->workloads[0];
  EXPECT_EQ(w.kind, WorkloadKind::kPid);
  EXPECT_EQ(w.host, "h1");
  EXPECT_EQ(w.netns, *StatNetns("/proc/self/ns/net"));
}

TEST(WorkloadResolverTest, NetnsHandleFindsItsProcesses) {
  WorkloadResolver r = NoRuntimes();
  v1::WorkloadSelector s;
  s.set_netns_path("/proc/" + std::to_string(::getpid()) + "/ns/net");
  auto got = r.Resolve(s);
  ASSERT_TRUE(got.ok()) << got.status().message();
  const auto& pids = got->workloads[0].pids;
  EXPECT_NE(std::find(pids.begin(), pids.end(), ::getpid()), pids.end());
}

TEST(WorkloadResolverTest, HandleErrorsAreClear) {
  WorkloadResolver r = NoRuntimes();
  v1::WorkloadSelector missing;
  missing.set_netns_path("/run/netns/fl-does-not-exist");
  EXPECT_EQ(r.Resolve(missing).status().code(), StatusCode::kNotFound);
  v1::WorkloadSelector not_netns;
  not_netns.set_netns_path("/proc/self/ns/uts");
  auto st = r.Resolve(not_netns).status();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("not a network namespace"), std::string::npos) << st.message();
  v1::WorkloadSelector gone;
  gone.set_pid(4194303);  // no such process (above any default pid_max)
  EXPECT_EQ(r.Resolve(gone).status().code(), StatusCode::kNotFound);
  v1::WorkloadSelector invalid;
  invalid.set_pid(1);
  EXPECT_EQ(r.Resolve(invalid).status().code(), StatusCode::kInvalidArgument);
}

TEST(WorkloadResolverTest, ARuntimeWithoutASocketNamesTheFlag) {
  WorkloadResolver r = NoRuntimes();
  auto st = r.Resolve(Labels("app", "orders")).status();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("--docker-socket"), std::string::npos) << st.message();
  EXPECT_TRUE(r.DescribeRuntimes().empty());
}

TEST(WorkloadResolverTest, ResolvesThroughTheEngineAndDescribesIt) {
  FakeEngine engine(Engine);
  WorkloadResolverOptions o;
  o.docker_socket = engine.path();
  o.cri_socket = "none";
  o.host = "h1";
  WorkloadResolver r(o);
  auto got = ListWorkloads(r, Labels("app", "orders"));
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->workloads_size(), 1);
  EXPECT_EQ(got->workloads(0).name(), "orders-1");
  EXPECT_EQ(got->workloads(0).host(), "h1");
  EXPECT_NE(got->workloads(0).netns_ino(), 0u);
  auto runtimes = r.DescribeRuntimes();
  ASSERT_EQ(runtimes.count("docker"), 1u);
  EXPECT_NE(runtimes["docker"].find("Libpod/4.3.1"), std::string::npos);
}

}  // namespace
}  // namespace faultline::agent::workloads
