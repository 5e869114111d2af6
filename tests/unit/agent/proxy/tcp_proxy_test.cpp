// TcpProxy against real loopback sockets. Without root there is no nft redirect, so each fault
// gets a fixed upstream (ProxyRoute::fixed_upstream); the redirect itself is exercised in
// tests/integration/proxy_faults_test.sh.
#include "agent/proxy/tcp_proxy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/agent/no_free_fds.h"

namespace faultline::agent::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Toxic = v1::DependencyFault::Toxic;

constexpr auto kDeadline = 10s;

bool WaitUntil(const std::function<bool()>& condition) {
  auto deadline = Clock::now() + kDeadline;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

sockaddr_storage Loopback(uint16_t port) {
  sockaddr_storage s{};
  auto* in = reinterpret_cast<sockaddr_in*>(&s);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return s;
}

int Listen(int backlog = 128) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = Loopback(0);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(sockaddr_in)), 0);
  EXPECT_EQ(::listen(fd, backlog), 0);
  return fd;
}

uint16_t PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(sockaddr_in)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};  // a stalled proxy fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until EOF, error or `want` bytes. Returns the bytes; *error gets errno of a failed read.
std::string ReadUpTo(int fd, size_t want, int* error = nullptr) {
  std::string out;
  char buf[65536];
  while (out.size() < want) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && error) *error = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// An echo server: one thread per connection, echoes until EOF, then closes. It serves until it
// is destroyed: an accept() that fails for lack of fds (a test that exhausts them, NoFreeFds)
// leaves the connection in the backlog and is retried, as a real server would.
class EchoServer {
 public:
  EchoServer() : fd_(Listen()) {
    thread_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno != EMFILE && errno != ENFILE) return;  // shut down by the destructor
          ++fd_exhausted_;
          // A retry backoff (the pending connection keeps the listener readable, so waiting for
          // readiness would spin), as the proxy's own listener backs off.
          std::this_thread::sleep_for(10ms);
          continue;
        }
        ++accepted_;
        std::thread([c] {
          char buf[65536];
          while (true) {
            ssize_t n = ::recv(c, buf, sizeof(buf), 0);
            if (n <= 0) break;
            if (!SendAll(c, std::string(buf, static_cast<size_t>(n)))) break;
          }
          ::close(c);
        }).detach();
      }
    });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return PortOf(fd_); }
  int accepted() const { return accepted_.load(); }
  // accept() failures for lack of fds (each retried).
  int fd_exhausted() const { return fd_exhausted_.load(); }

 private:
  int fd_;
  std::atomic<int> accepted_{0};
  std::atomic<int> fd_exhausted_{0};
  std::thread thread_;
};

// FNV-1a, to compare what a peer received with what was sent without keeping both copies.
uint64_t Fnv(uint64_t h, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 1099511628211ull;
  return h;
}
constexpr uint64_t kFnvBasis = 14695981039346656037ull;

// A sink: reads one connection to EOF (after `gate` opens, `chunk` bytes per read), then answers
// with the byte count and FNV-1a hash of what it read (16 bytes) and closes: the answer only
// arrives through a proxy that carries a half-closed connection.
class SinkServer {
 public:
  explicit SinkServer(std::shared_future<void> gate = {}, size_t chunk = 65536)
      : fd_(Listen()), gate_(std::move(gate)), chunk_(chunk) {
    if (gate_.valid()) {  // a small window (inherited by the accepted socket) fills sooner
      int size = 64 * 1024;
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conn_ = c;
      if (gate_.valid()) gate_.wait();
      std::vector<char> buf(chunk_);
      uint64_t reply[2] = {0, kFnvBasis};
      while (true) {
        ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        reply[0] += static_cast<uint64_t>(n);
        reply[1] = Fnv(reply[1], buf.data(), static_cast<size_t>(n));
      }
      SendAll(c, std::string(reinterpret_cast<char*>(reply), sizeof(reply)));
      ::close(c);
    });
  }
  ~SinkServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (int c = conn_.load(); c >= 0) ::shutdown(c, SHUT_RDWR);  // a failed test: never hang
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return PortOf(fd_); }

 private:
  int fd_;
  std::atomic<int> conn_{-1};
  std::shared_future<void> gate_;
  size_t chunk_;
  std::thread thread_;
};

std::string Pattern(size_t size, int seed) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * seed + (i >> 16));
  return data;
}

class TcpProxyTest : public ::testing::Test {
 protected:
  // Sends `data` on `c` from a second thread while reading the echo back, closes `c` and waits
  // until the proxy has let go of the connection. Returns what came back.
  std::string EchoAndClose(int c, const std::string& data) {
    std::thread writer([&] { SendAll(c, data); });
    std::string got = ReadUpTo(c, data.size());
    writer.join();
    ::close(c);
    EXPECT_TRUE(WaitUntil([&] { return proxy_->open_connections() == 0; }));
    return got;
  }

  void StartProxy(ProxyOptions o = {}) {
    auto p = TcpProxy::Start(o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    proxy_ = std::move(*p);
  }
  // Adds a fault whose connections go to `upstream_port`; returns the proxy's port.
  uint16_t AddFault(const v1::DependencyFault& fault, uint16_t upstream_port,
                    const std::string& id = "f1") {
    counters_ = std::make_shared<ProxyCounters>();
    auto l = proxy_->AddFault(id, ProxyRoute{fault, Loopback(upstream_port)}, counters_);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? l->port : 0;
  }
  static v1::DependencyFault WithToxic(const std::function<void(Toxic*)>& set) {
    v1::DependencyFault f;
    f.mutable_match()->add_remote_ports(1);
    set(f.add_toxics());
    return f;
  }

  std::unique_ptr<TcpProxy> proxy_;
  std::shared_ptr<ProxyCounters> counters_;
  EchoServer echo_;
};

TEST_F(TcpProxyTest, PassesBytesUnchangedThroughTheSplicedPath) {
  ProxyOptions o;
  o.splice = true;
  StartProxy(o);
  // An upstream-only toxic that never fires leaves both directions spliced.
  auto f = WithToxic([](Toxic* t) {
    t->mutable_reset_peer()->set_timeout_ms(60000);
    t->set_toxicity(1e-9);
  });
  uint16_t port = AddFault(f, echo_.port());
  int c = Connect(port);
  ASSERT_GE(c, 0);
  const std::string data = Pattern(1 << 20, 7);
  EXPECT_EQ(EchoAndClose(c, data), data);
  EXPECT_EQ(counters_->connections_affected.load(), 0u);
  EXPECT_EQ(counters_->bytes_upstream.load(), data.size());
  EXPECT_EQ(counters_->bytes_downstream.load(), data.size());
}

TEST_F(TcpProxyTest, SplicedPathCarriesBulkAndAHalfClosedReply) {
  StartProxy();  // splice is the default for untouched directions
  SinkServer sink;
  int c = Connect(AddFault(v1::DependencyFault{}, sink.port()));
  ASSERT_GE(c, 0);
  // Enough for the spliced direction to use up its per-wake-up step budget many times over (a
  // budget exit once left a full pipe with no event to come back on: the transfer stalled).
  const std::string data = Pattern(64 << 20, 11);
  const bool sent = SendAll(c, data);  // fails after SO_SNDTIMEO if the proxy stalls
  if (!sent) ::close(c);
  ASSERT_TRUE(sent);
  ::shutdown(c, SHUT_WR);  // half-close: the reply must still come back
  std::string reply = ReadUpTo(c, 17);
  ASSERT_EQ(reply.size(), 16u);
  uint64_t got[2];
  std::memcpy(got, reply.data(), sizeof(got));
  EXPECT_EQ(got[0], data.size());
  EXPECT_EQ(got[1], Fnv(kFnvBasis, data.data(), data.size()));
  ::close(c);
  EXPECT_TRUE(WaitUntil([&] { return proxy_->open_connections() == 0; }));
  EXPECT_EQ(counters_->bytes_upstream.load(), data.size());
  EXPECT_EQ(counters_->bytes_downstream.load(), 16u);
  // A connection no toxic touches is zero-copy both ways.
  EXPECT_EQ(counters_->bytes_spliced.load(), data.size() + 16);
}

TEST_F(TcpProxyTest, SplicedPathResumesAfterPartialDrainsToASlowReader) {
  StartProxy();
  std::promise<void> open_gate;
  // The sink reads nothing until the whole chain is full, then 1000 bytes at a time, so the
  // proxy's pipe is drained in many partial splices.
  SinkServer sink(open_gate.get_future().share(), 1000);
  bool gate_open = false;
  struct OpenOnExit {  // a failed assertion must not leave the sink waiting (its join would hang)
    std::promise<void>& gate;
    bool& open;
    ~OpenOnExit() {
      if (!open) gate.set_value();
    }
  } open_on_exit{open_gate, gate_open};
  int c = Connect(AddFault(v1::DependencyFault{}, sink.port()));
  ASSERT_GE(c, 0);
  const std::string data = Pattern(32 << 20, 5);
  int size = 64 * 1024;
  ::setsockopt(c, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(c, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << std::strerror(errno);
    // Our send buffer is full: the proxy has stopped reading, its pipe is full and blocked.
    if (!gate_open) open_gate.set_value(), gate_open = true;
    pollfd p{c, POLLOUT, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);
  }
  ASSERT_TRUE(gate_open) << "32 MiB never filled the chain; the test proves nothing";
  ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) & ~O_NONBLOCK);
  ::shutdown(c, SHUT_WR);
  std::string reply = ReadUpTo(c, 17);
  ASSERT_EQ(reply.size(), 16u);
  uint64_t got[2];
  std::memcpy(got, reply.data(), sizeof(got));
  EXPECT_EQ(got[0], data.size());
  EXPECT_EQ(got[1], Fnv(kFnvBasis, data.data(), data.size()));
  ::close(c);
  EXPECT_EQ(counters_->bytes_spliced.load(), data.size() + 16);
}

TEST_F(TcpProxyTest, DownstreamToxicLeavesTheUpstreamSpliced) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) {
    t->set_direction(Toxic::DOWNSTREAM);
    t->mutable_latency()->set_latency_us(1000);
  });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  const std::string data = Pattern(1 << 20, 3);
  EXPECT_EQ(EchoAndClose(c, data), data);
  EXPECT_EQ(counters_->bytes_upstream.load(), data.size());
  EXPECT_EQ(counters_->bytes_downstream.load(), data.size());
  // Upstream zero-copy, downstream through the latency queue.
  EXPECT_EQ(counters_->bytes_spliced.load(), data.size());
  EXPECT_EQ(counters_->bytes_delayed.load(), data.size());
}

TEST_F(TcpProxyTest, PassesBytesUnchangedThroughTheUserSpacePath) {
  ProxyOptions o;
  o.splice = false;
  StartProxy(o);
  auto f = WithToxic([](Toxic* t) {
    t->mutable_reset_peer()->set_timeout_ms(60000);
    t->set_toxicity(1e-9);
  });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  const std::string data = Pattern(1 << 20, 13);
  EXPECT_EQ(EchoAndClose(c, data), data);
  EXPECT_EQ(proxy_->held_bytes(), 0u);
  EXPECT_EQ(counters_->bytes_spliced.load(), 0u);
}

TEST_F(TcpProxyTest, LatencyHoldsEachChunkAtLeastTheDelay) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) {
    t->set_direction(Toxic::DOWNSTREAM);
    t->mutable_latency()->set_latency_us(100000);
  });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  auto start = Clock::now();
  ASSERT_TRUE(SendAll(c, "ping"));
  EXPECT_EQ(ReadUpTo(c, 4), "ping");
  EXPECT_GE(Clock::now() - start, 100ms);
  EXPECT_EQ(counters_->bytes_delayed.load(), 4u);
  EXPECT_EQ(counters_->toxic_connections[Toxic::kLatency - ProxyCounters::kFirstToxicField], 1u);
  ::close(c);
}

TEST_F(TcpProxyTest, ResetPeerResetsTheClient) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) { t->mutable_reset_peer()->set_timeout_ms(50); });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  int error = 0;
  std::string got = ReadUpTo(c, 1, &error);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(error, ECONNRESET);
  EXPECT_TRUE(WaitUntil([&] { return counters_->connections_reset.load() == 1; }));
  ::close(c);
}

TEST_F(TcpProxyTest, TimeoutSwallowsDataThenCloses) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) { t->mutable_timeout()->set_timeout_ms(200); });
  uint16_t port = AddFault(f, echo_.port());
  auto start = Clock::now();  // the timeout runs from the proxy's accept
  int c = Connect(port);
  ASSERT_GE(c, 0);
  ASSERT_TRUE(SendAll(c, "hello"));
  int error = 0;
  EXPECT_EQ(ReadUpTo(c, 5, &error), "");  // nothing reached the echo server: nothing comes back
  EXPECT_EQ(error, 0);                    // a clean close, not a reset
  EXPECT_GE(Clock::now() - start, 200ms);
  EXPECT_EQ(counters_->bytes_discarded.load(), 5u);
  EXPECT_EQ(counters_->connections_timed_out.load(), 1u);
  ::close(c);
}

TEST_F(TcpProxyTest, LimitDataClosesAfterTheLimit) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) {
    t->set_direction(Toxic::DOWNSTREAM);
    t->mutable_limit_data()->set_bytes(1000);
  });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  std::string data(5000, 'x');
  ASSERT_TRUE(SendAll(c, data));
  EXPECT_EQ(ReadUpTo(c, data.size()).size(), 1000u);
  EXPECT_TRUE(WaitUntil([&] { return counters_->connections_limited.load() == 1; }));
  ::close(c);
}

TEST_F(TcpProxyTest, SlicerAndBandwidthDeliverEveryByteInOrder) {
  StartProxy();
  v1::DependencyFault f;
  f.mutable_match()->add_remote_ports(1);
  auto* s = f.add_toxics();
  s->set_direction(Toxic::DOWNSTREAM);
  s->mutable_slicer()->set_average_size(100);
  s->mutable_slicer()->set_size_variation(50);
  s->mutable_slicer()->set_delay_us(100);
  auto* b = f.add_toxics();
  b->set_direction(Toxic::UPSTREAM);
  b->mutable_bandwidth()->set_rate_bytes_per_second(200000);
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  std::string data(50000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 251);
  auto start = Clock::now();
  ASSERT_TRUE(SendAll(c, data));
  EXPECT_EQ(ReadUpTo(c, data.size()), data);
  // 50 kB at 200 kB/s cannot arrive sooner than 0.25 s.
  EXPECT_GE(Clock::now() - start, 240ms);
  ::close(c);
}

TEST_F(TcpProxyTest, SlowCloseDelaysTheFin) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) {
    t->set_direction(Toxic::DOWNSTREAM);
    t->mutable_slow_close()->set_delay_ms(300);
  });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  ASSERT_TRUE(SendAll(c, "bye"));
  EXPECT_EQ(ReadUpTo(c, 3), "bye");
  ::shutdown(c, SHUT_WR);  // the echo server closes, its FIN is held
  auto start = Clock::now();
  char byte;
  EXPECT_EQ(::recv(c, &byte, 1, 0), 0);
  EXPECT_GE(Clock::now() - start, 290ms);
  ::close(c);
}

TEST_F(TcpProxyTest, ToxicityShareOfConnectionsIsWithinBinomialBounds) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) {
    t->mutable_reset_peer()->set_timeout_ms(0);
    t->set_toxicity(0.3);
  });
  uint16_t port = AddFault(f, echo_.port());
  const int n = 600;
  int resets = 0;
  for (int i = 0; i < n; ++i) {
    int c = Connect(port);
    ASSERT_GE(c, 0);
    int error = 0;
    if (SendAll(c, "x") && ReadUpTo(c, 1, &error) == "x") {
      // passed
    } else {
      ++resets;
    }
    ::close(c);
  }
  // 0.3 ± 5 sd (sd = sqrt(0.3 * 0.7 / 600) = 0.0187).
  EXPECT_NEAR(resets / double(n), 0.3, 0.094);
  EXPECT_EQ(counters_->connections_reset.load(), static_cast<uint64_t>(resets));
  EXPECT_EQ(counters_->connections_affected.load(), static_cast<uint64_t>(resets));
}

TEST_F(TcpProxyTest, HttpAbortAnswersWithoutReachingTheDependency) {
  StartProxy();
  httplib::Server server;
  std::atomic<int> reached{0};
  server.Get(R"(/kv/.*)", [&](const httplib::Request&, httplib::Response& res) {
    ++reached;
    res.set_content("{\"value\":1}", "application/json");
  });
  int server_port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  v1::DependencyFault f;
  f.mutable_match()->add_remote_ports(1);
  auto* a = f.mutable_http()->add_aborts();
  a->set_status(503);
  a->set_body("throttled");
  a->set_percent(100);
  f.mutable_http()->set_path_prefix("/kv/");
  uint16_t port = AddFault(f, static_cast<uint16_t>(server_port));
  httplib::Client client("127.0.0.1", port);
  auto aborted = client.Get("/kv/orders/1");
  ASSERT_TRUE(aborted);
  EXPECT_EQ(aborted->status, 503);
  EXPECT_EQ(aborted->body, "throttled");
  auto passed = client.Get("/healthz-not-kv");
  ASSERT_TRUE(passed);
  EXPECT_EQ(passed->status, 404);  // reached the real server, which has no such route
  EXPECT_EQ(reached.load(), 0);
  EXPECT_EQ(counters_->requests_aborted.load(), 1u);
  EXPECT_EQ(counters_->requests_seen.load(), 2u);
  server.stop();
  serving.join();
}

TEST_F(TcpProxyTest, ConnectionCapResetsTheExcess) {
  ProxyOptions o;
  o.max_connections = 2;
  StartProxy(o);
  auto f = WithToxic([](Toxic* t) { t->mutable_latency()->set_latency_us(1); });
  uint16_t port = AddFault(f, echo_.port());
  int a = Connect(port), b = Connect(port);
  ASSERT_TRUE(WaitUntil([&] { return proxy_->open_connections() == 2; }));
  int c = Connect(port);
  ASSERT_GE(c, 0);
  int error = 0;
  EXPECT_EQ(ReadUpTo(c, 1, &error), "");
  EXPECT_EQ(error, ECONNRESET);
  EXPECT_EQ(counters_->connections_refused_over_cap.load(), 1u);
  ::close(a), ::close(b), ::close(c);
}

TEST_F(TcpProxyTest, UnansweredUpstreamConnectsAreGivenUpSoFdsDoNotGrow) {
  ProxyOptions o;
  o.connect_timeout_ms = 200;
  StartProxy(o);
  // A listener that never accepts: once its backlog is full, SYNs are dropped, as by a black hole.
  int hole = Listen(0);
  int filler = Connect(PortOf(hole));
  auto f = WithToxic([](Toxic* t) { t->mutable_latency()->set_latency_us(1); });
  uint16_t port = AddFault(f, PortOf(hole));
  std::vector<int> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(Connect(port));
  EXPECT_TRUE(WaitUntil([&] { return counters_->upstream_connect_failures.load() >= 19; }));
  EXPECT_TRUE(WaitUntil([&] { return proxy_->open_connections() <= 1; }));
  for (int c : clients) ::close(c);
  ::close(filler);
  ::close(hole);
}

size_t OpenFds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

size_t RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

TEST_F(TcpProxyTest, FdsAndRssStayFlatOver10kConnections) {
  StartProxy();
  v1::DependencyFault f;
  f.mutable_match()->add_remote_ports(1);
  auto* t = f.add_toxics();
  t->set_direction(Toxic::DOWNSTREAM);
  t->mutable_latency()->set_latency_us(10);
  t->set_toxicity(0.5);  // half buffered, half spliced
  uint16_t port = AddFault(f, echo_.port());
  // Every fd of this process (proxy, echo server, clients) must be back to this after each round.
  const size_t fds = OpenFds();
  auto round = [&](int count) {
    for (int i = 0; i < count; ++i) {
      int c = Connect(port);
      ASSERT_GE(c, 0);
      ASSERT_TRUE(SendAll(c, "0123456789"));
      ASSERT_EQ(ReadUpTo(c, 10), "0123456789");
      ::close(c);
    }
    ASSERT_TRUE(WaitUntil([&] { return proxy_->open_connections() == 0; }));
    ASSERT_TRUE(WaitUntil([&] { return OpenFds() == fds; })) << OpenFds() << " fds, not " << fds;
  };
  round(1000);
  const size_t rss = RssKb();
  round(9000);
  EXPECT_LT(RssKb(), rss + 8 * 1024) << "RSS grew from " << rss << " kB";
  EXPECT_EQ(proxy_->held_bytes(), 0u);
  EXPECT_EQ(counters_->connections_accepted.load(), 10000u);
}

TEST_F(TcpProxyTest, RemoveFaultClosesItsConnectionsAndListener) {
  StartProxy();
  auto f = WithToxic([](Toxic* t) { t->mutable_timeout()->set_timeout_ms(0); });
  uint16_t port = AddFault(f, echo_.port());
  int c = Connect(port);
  ASSERT_TRUE(WaitUntil([&] { return proxy_->open_connections() == 1; }));
  proxy_->RemoveFault("f1");
  EXPECT_EQ(proxy_->open_connections(), 0u);
  EXPECT_EQ(ReadUpTo(c, 1), "");  // closed
  ::close(c);
  EXPECT_LT(Connect(port), 0);  // nobody listens any more
  proxy_->RemoveFault("f1");    // idempotent
}

TEST_F(TcpProxyTest, IdleConnectionIsClosedAndCounted) {
  ProxyOptions o;
  o.idle_timeout_ms = 300;
  StartProxy(o);
  auto f = WithToxic([](Toxic* t) { t->mutable_latency()->set_latency_us(1); });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  ASSERT_TRUE(SendAll(c, "ping"));
  ASSERT_EQ(ReadUpTo(c, 4), "ping");
  // Nothing more either way: the proxy closes both sides (a FIN here, not a reset).
  int error = 0;
  EXPECT_EQ(ReadUpTo(c, 1, &error), "");
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(WaitUntil([&] { return proxy_->open_connections() == 0; }));
  EXPECT_EQ(counters_->connections_idle_closed.load(), 1u);
  ::close(c);
}

TEST_F(TcpProxyTest, BusyConnectionOutlivesTheIdleTimeout) {
  ProxyOptions o;
  o.idle_timeout_ms = 1000;
  StartProxy(o);
  int c = Connect(AddFault(v1::DependencyFault{}, echo_.port()));  // spliced both ways
  ASSERT_GE(c, 0);
  // Bytes every 20 ms for twice the idle timeout: never idle, never closed.
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(SendAll(c, "x"));
    ASSERT_EQ(ReadUpTo(c, 1), "x") << "closed after " << i << " round trips";
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(counters_->connections_idle_closed.load(), 0u);
  ::close(c);
}

TEST_F(TcpProxyTest, AcceptWithoutFreeFdsBacksOffInsteadOfSpinning) {
  StartProxy();
  uint16_t port = AddFault(v1::DependencyFault{}, echo_.port());
  // The client's socket exists before the limit drops; connecting it needs no new fd, and the
  // kernel completes the handshake into the proxy's backlog, where accept() fails with EMFILE.
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(c, 0);
  auto a = Loopback(port);
  {
    testing::NoFreeFds limit;
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(sockaddr_in)), 0);
    ASSERT_TRUE(WaitUntil([&] { return counters_->accept_failures.load() >= 1; }));
    // Half a second with the connection pending and no fd free: a loop that retries at once
    // (level-triggered readiness) makes hundreds of thousands of attempts; one that backs off,
    // a handful.
    std::this_thread::sleep_for(500ms);
    EXPECT_LE(counters_->accept_failures.load(), 20u);
  }
  // Fds free again: the pending connection is served.
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ASSERT_TRUE(SendAll(c, "late"));
  EXPECT_EQ(ReadUpTo(c, 4), "late")
      << "proxy accepted=" << counters_->connections_accepted.load()
      << " upfail=" << counters_->upstream_connect_failures.load()
      << " acceptfail=" << counters_->accept_failures.load()
      << " active=" << counters_->connections_active.load()
      << " open=" << proxy_->open_connections() << " echo_accepted=" << echo_.accepted()
      << " echo_exhausted=" << echo_.fd_exhausted();
  ::close(c);
}

size_t HeapInUse() { return mallinfo2().uordblks; }

TEST_F(TcpProxyTest, HeldBudgetBoundsRealMemoryEvenForOneByteSlices) {
  ProxyOptions o;
  o.max_held_bytes = 256 * 1024;
  StartProxy(o);
  // 1-byte slices released one per 10 ms: everything read stays queued.
  auto f = WithToxic([](Toxic* t) {
    t->set_direction(Toxic::UPSTREAM);
    t->mutable_slicer()->set_average_size(1);
    t->mutable_slicer()->set_delay_us(10000);
  });
  int c = Connect(AddFault(f, echo_.port()));
  ASSERT_GE(c, 0);
  const std::string data = Pattern(8 << 20, 3);
  const size_t before = HeapInUse();
  ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
  size_t off = 0;
  // Until the proxy stops reading (its budget is spent) and our send buffer fills.
  while (off < data.size()) {
    ssize_t n = ::send(c, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << std::strerror(errno);
    if (counters_->held_budget_stalls.load() > 0) break;
    pollfd p{c, POLLOUT, 0};
    ::poll(&p, 1, 100);
  }
  ASSERT_GT(counters_->held_budget_stalls.load(), 0u) << "the budget never filled";
  const size_t grown = HeapInUse() - std::min(HeapInUse(), before);
  // What the proxy holds counts what it allocated, so the heap grew by about the budget, not by
  // the ~50 bytes of bookkeeping per 1-byte chunk that the data bytes alone would allow.
  EXPECT_LE(grown, 2 * o.max_held_bytes) << "heap grew " << grown << " bytes";
  EXPECT_LE(proxy_->held_bytes(), 2 * o.max_held_bytes);
  linger reset{1, 0};  // a reset, so the proxy drops the queue instead of trickling it out
  ::setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(c);
  EXPECT_TRUE(WaitUntil([&] { return proxy_->held_bytes() == 0; }));
}

}  // namespace
}  // namespace faultline::agent::proxy
