#include "agent/dns/dns_interceptor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "tests/unit/agent/no_free_fds.h"

namespace faultline::agent::dns {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kDeadline = 10s;

// Polls a condition until it holds or the deadline passes; the event itself is what we wait for.
bool WaitUntil(const std::function<bool()>& condition) {
  auto deadline = Clock::now() + kDeadline;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

DnsWire ToWire(ldns_pkt* pkt) {
  uint8_t* buf = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&buf, pkt, &size), LDNS_STATUS_OK);
  DnsWire wire(buf, buf + size);
  std::free(buf);
  return wire;
}

DnsWire MakeQuery(const char* name, uint16_t id, ldns_rr_type type = LDNS_RR_TYPE_A) {
  ldns_pkt* raw = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&raw, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
            LDNS_STATUS_OK);
  Pkt pkt(raw);
  ldns_pkt_set_id(pkt.get(), id);
  return ToWire(pkt.get());
}

Pkt Parse(const DnsWire& wire) {
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, wire.data(), wire.size()) != LDNS_STATUS_OK) return nullptr;
  return Pkt(raw);
}

// The upstream's answer: the question, one A record, AA set; distinctive enough that a relay that
// rebuilt the message would not reproduce it byte for byte.
DnsWire MakeUpstreamAnswer(const DnsWire& query) {
  Pkt q = Parse(query);
  EXPECT_NE(q, nullptr);
  Pkt resp(ldns_pkt_new());
  ldns_pkt_set_id(resp.get(), ldns_pkt_id(q.get()));
  ldns_pkt_set_qr(resp.get(), true);
  ldns_pkt_set_aa(resp.get(), true);
  ldns_pkt_set_rd(resp.get(), ldns_pkt_rd(q.get()));
  ldns_rr* question = ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(q.get()), 0));
  char* owner = ldns_rdf2str(ldns_rr_owner(question));
  ldns_pkt_push_rr(resp.get(), LDNS_SECTION_QUESTION, question);
  // "alias.*" names are a CNAME to target.test (as dnsmasq --cname serves them).
  std::vector<std::string> texts;
  if (std::string(owner).starts_with("alias.")) {
    texts = {std::string(owner) + " 300 IN CNAME target.test.", "target.test. 300 IN A 10.9.9.9"};
  } else if (std::string(owner).starts_with("big.")) {
    // A large answer (~3.4 KB): 300 A records, far over 512 bytes and the EDNS default of 1232.
    for (int i = 0; i < 300; ++i) {
      texts.push_back(std::string(owner) + " 300 IN A 10.9." + std::to_string(i / 250) + "." +
                      std::to_string(i % 250));
    }
  } else {
    texts = {std::string(owner) + " 300 IN A 10.9.9.9"};
  }
  std::free(owner);
  for (const auto& text : texts) {
    ldns_rr* answer = nullptr;
    EXPECT_EQ(ldns_rr_new_frm_str(&answer, text.c_str(), 0, nullptr, nullptr), LDNS_STATUS_OK);
    ldns_pkt_push_rr(resp.get(), LDNS_SECTION_ANSWER, answer);
  }
  return ToWire(resp.get());
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t BoundPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool ReadExactly(int fd, uint8_t* buf, size_t n, Clock::time_point deadline) {
  size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (ms.count() <= 0 || poll(&p, 1, static_cast<int>(ms.count())) <= 0) return false;
    ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

bool WriteFramed(int fd, const DnsWire& msg) {
  DnsWire framed = {static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size())};
  framed.insert(framed.end(), msg.begin(), msg.end());
  return send(fd, framed.data(), framed.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(framed.size());
}

std::optional<DnsWire> ReadFramed(int fd, Clock::time_point deadline) {
  uint8_t len[2];
  if (!ReadExactly(fd, len, 2, deadline)) return std::nullopt;
  DnsWire msg((len[0] << 8) | len[1]);
  if (!ReadExactly(fd, msg.data(), msg.size(), deadline)) return std::nullopt;
  return msg;
}

// An in-process upstream resolver on 127.0.0.1: UDP and TCP on the same port (as a real resolver
// is), answering every query with MakeUpstreamAnswer and recording what it received and sent.
class FakeUpstream {
 public:
  FakeUpstream() {
    for (int attempt = 0; attempt < 20 && port_ == 0; ++attempt) {
      int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in a = Loopback(0);
      bind(u, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      uint16_t port = BoundPort(u);
      int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      a = Loopback(port);
      if (bind(t, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && listen(t, 16) == 0) {
        udp_ = u;
        tcp_ = t;
        port_ = port;
      } else {
        close(u);
        close(t);
      }
    }
    pipe(stop_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeUpstream() {
    close(stop_[1]);
    thread_.join();
    close(stop_[0]);
    close(udp_);
    close(tcp_);
  }
  uint16_t port() const { return port_; }
  std::vector<DnsWire> received() {
    std::lock_guard l(mu_);
    return received_;
  }
  std::vector<DnsWire> sent() {
    std::lock_guard l(mu_);
    return sent_;
  }

 private:
  DnsWire Answer(const DnsWire& query) {
    DnsWire reply = MakeUpstreamAnswer(query);
    std::lock_guard l(mu_);
    received_.push_back(query);
    sent_.push_back(reply);
    return reply;
  }
  void Serve() {
    while (true) {
      pollfd fds[3] = {{stop_[0], POLLIN, 0}, {udp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
      if (poll(fds, 3, -1) < 0 || fds[0].revents != 0) return;
      if (fds[1].revents != 0) {
        uint8_t buf[65535];
        sockaddr_in from{};
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(udp_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0) {
          DnsWire reply = Answer(DnsWire(buf, buf + n));
          sendto(udp_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        }
      }
      if (fds[2].revents != 0) {
        int c = accept(tcp_, nullptr, nullptr);
        if (c < 0) continue;
        auto query = ReadFramed(c, Clock::now() + kDeadline);
        if (query) WriteFramed(c, Answer(*query));
        close(c);
      }
    }
  }

  int udp_ = -1, tcp_ = -1, stop_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<DnsWire> received_, sent_;
};

class UdpClient {
 public:
  explicit UdpClient(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = Loopback(port);
    connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  ~UdpClient() { close(fd_); }
  void Send(const DnsWire& msg) { send(fd_, msg.data(), msg.size(), 0); }
  std::optional<DnsWire> Receive() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, std::chrono::duration_cast<std::chrono::milliseconds>(kDeadline).count()) <= 0)
      return std::nullopt;
    return ReceiveNow();
  }
  // Whatever is already queued, without waiting.
  std::optional<DnsWire> ReceiveNow() {
    uint8_t buf[65535];
    ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    return DnsWire(buf, buf + n);
  }

 private:
  int fd_ = -1;
};

std::optional<DnsWire> TcpQuery(uint16_t port, const DnsWire& query) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  std::optional<DnsWire> reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && WriteFramed(fd, query)) {
    reply = ReadFramed(fd, Clock::now() + kDeadline);
  }
  close(fd);
  return reply;
}

size_t OpenFdCount() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

DomainMatcher Matcher(std::vector<std::string> patterns) {
  auto m = DomainMatcher::Create(patterns);
  EXPECT_TRUE(m.ok());
  return *m;
}

class DnsInterceptorTest : public ::testing::Test {
 protected:
  // Starts an interceptor whose upstream is the fake (or the given port).
  void StartInterceptor(uint16_t upstream_port, int timeout_ms = 2000, int max_outstanding = 64) {
    DnsInterceptorOptions o;
    o.upstream = "127.0.0.1:" + std::to_string(upstream_port);
    // SO_MARK needs CAP_NET_ADMIN; the production path always sets it.
    o.socket_mark = geteuid() == 0 ? 0x464c : 0;
    o.upstream_timeout_ms = timeout_ms;
    o.max_outstanding = max_outstanding;
    interceptor_ = std::make_unique<DnsInterceptor>(o);
    Status s = interceptor_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(interceptor_->port(), 0);
  }
  DnsInterceptor::Counter AddRule(const std::string& id, std::vector<std::string> patterns,
                                  v1::DnsFault::Mode mode) {
    auto c = interceptor_->AddRule(id, Matcher(std::move(patterns)), mode);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : nullptr;
  }

  FakeUpstream upstream_;
  std::unique_ptr<DnsInterceptor> interceptor_;
};

TEST_F(DnsInterceptorTest, UdpMatchingQueryGetsTheFaultAnswerAndCounts) {
  StartInterceptor(upstream_.port());
  auto faulted = AddRule("f1", {"*.sandbox.test"}, v1::DnsFault::NXDOMAIN);
  UdpClient client(interceptor_->port());
  client.Send(MakeQuery("DynamoDB.Sandbox.Test.", 0x1234));
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  Pkt pkt = Parse(*reply);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_id(pkt.get()), 0x1234);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
  EXPECT_TRUE(WaitUntil([&] { return faulted->load() == 1; }));
  EXPECT_TRUE(upstream_.received().empty());
  auto stats = interceptor_->GetStats();
  EXPECT_EQ(stats.queries_seen, 1u);
  EXPECT_EQ(stats.queries_faulted, 1u);
  EXPECT_EQ(stats.queries_passed, 0u);
}

TEST_F(DnsInterceptorTest, UdpNonMatchingQueryIsRelayedByteForByte) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  UdpClient client(interceptor_->port());
  DnsWire query = MakeQuery("b.test", 0x4321);
  client.Send(query);
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(upstream_.received().size(), 1u);
  EXPECT_EQ(upstream_.received()[0], query);
  EXPECT_EQ(*reply, upstream_.sent()[0]);
  EXPECT_TRUE(WaitUntil([&] { return interceptor_->GetStats().outstanding == 0; }));
  EXPECT_EQ(interceptor_->GetStats().queries_passed, 1u);
}

TEST_F(DnsInterceptorTest, EdnsQueryAndLargeAnswerPassThroughIntactOverUdpAndTcp) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  ldns_pkt* raw = nullptr;
  ASSERT_EQ(ldns_pkt_query_new_frm_str(&raw, "big.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD),
            LDNS_STATUS_OK);
  Pkt q(raw);
  ldns_pkt_set_id(q.get(), 0x5151);
  ldns_pkt_set_edns_udp_size(q.get(), 4096);
  ldns_pkt_set_edns_do(q.get(), true);
  const DnsWire query = ToWire(q.get());
  UdpClient client(interceptor_->port());
  client.Send(query);
  auto udp_reply = client.Receive();
  ASSERT_TRUE(udp_reply.has_value());
  ASSERT_EQ(upstream_.received().size(), 1u);
  EXPECT_EQ(upstream_.received()[0], query);  // the OPT record reaches the upstream as sent
  EXPECT_GT(udp_reply->size(), 3000u);
  EXPECT_EQ(*udp_reply, upstream_.sent()[0]);
  auto tcp_reply = TcpQuery(interceptor_->port(), query);
  ASSERT_TRUE(tcp_reply.has_value());
  ASSERT_EQ(upstream_.received().size(), 2u);
  EXPECT_EQ(upstream_.received()[1], query);
  EXPECT_EQ(*tcp_reply, upstream_.sent()[1]);
}

TEST_F(DnsInterceptorTest, TcpMatchingQueryGetsTheFaultAnswerAndCounts) {
  StartInterceptor(upstream_.port());
  auto faulted = AddRule("f1", {"a.test"}, v1::DnsFault::SERVFAIL);
  auto reply = TcpQuery(interceptor_->port(), MakeQuery("a.test", 77));
  ASSERT_TRUE(reply.has_value());
  Pkt pkt = Parse(*reply);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_id(pkt.get()), 77);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_TRUE(WaitUntil([&] { return faulted->load() == 1; }));
  EXPECT_TRUE(upstream_.received().empty());
}

TEST_F(DnsInterceptorTest, TcpNonMatchingQueryIsRelayedByteForByte) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::SERVFAIL);
  DnsWire query = MakeQuery("b.test", 78);
  auto reply = TcpQuery(interceptor_->port(), query);
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(upstream_.received().size(), 1u);
  EXPECT_EQ(upstream_.received()[0], query);
  EXPECT_EQ(*reply, upstream_.sent()[0]);
}

TEST_F(DnsInterceptorTest, DropGivesNoAnswerAndCounts) {
  StartInterceptor(upstream_.port());
  auto faulted = AddRule("f1", {"a.test"}, v1::DnsFault::DROP);
  UdpClient client(interceptor_->port());
  client.Send(MakeQuery("a.test", 5));
  ASSERT_TRUE(WaitUntil([&] { return faulted->load() == 1; }));
  // A faulted answer is sent before its count moves, so had there been one it would be queued.
  EXPECT_FALSE(client.ReceiveNow().has_value());
  EXPECT_TRUE(upstream_.received().empty());
}

TEST_F(DnsInterceptorTest, FirstMatchingRuleWins) {
  StartInterceptor(upstream_.port());
  auto first = AddRule("f1", {"*.test"}, v1::DnsFault::REFUSED);
  auto second = AddRule("f2", {"a.test"}, v1::DnsFault::NXDOMAIN);
  UdpClient client(interceptor_->port());
  client.Send(MakeQuery("a.test", 9));
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(ldns_pkt_get_rcode(Parse(*reply).get()), LDNS_RCODE_REFUSED);
  EXPECT_TRUE(WaitUntil([&] { return first->load() == 1; }));
  EXPECT_EQ(second->load(), 0u);
}

TEST_F(DnsInterceptorTest, DuplicateRuleIsRejected) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::DROP);
  auto again = interceptor_->AddRule("f1", Matcher({"b.test"}), v1::DnsFault::DROP);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(DnsInterceptorTest, RemovingTheRuleRestoresPassThrough) {
  StartInterceptor(upstream_.port());
  auto faulted = AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  UdpClient client(interceptor_->port());
  client.Send(MakeQuery("a.test", 1));
  auto faulted_reply = client.Receive();
  ASSERT_TRUE(faulted_reply.has_value());
  EXPECT_EQ(ldns_pkt_get_rcode(Parse(*faulted_reply).get()), LDNS_RCODE_NXDOMAIN);

  EXPECT_TRUE(interceptor_->RemoveRule("f1"));
  EXPECT_FALSE(interceptor_->RemoveRule("f1"));
  DnsWire query = MakeQuery("a.test", 2);
  client.Send(query);
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(upstream_.received().size(), 1u);
  EXPECT_EQ(*reply, upstream_.sent()[0]);
  // The removed rule's counter keeps its final value.
  EXPECT_EQ(faulted->load(), 1u);
}

TEST_F(DnsInterceptorTest, GarbageIsCountedAndIgnored) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  UdpClient client(interceptor_->port());
  client.Send(DnsWire{0xde, 0xad});
  client.Send(DnsWire(40, 0xff));
  ASSERT_TRUE(WaitUntil([&] { return interceptor_->GetStats().malformed == 2; }));
  EXPECT_TRUE(upstream_.received().empty());
  // Still serving, and nothing was sent back for the garbage.
  client.Send(MakeQuery("a.test", 3));
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(ldns_pkt_id(Parse(*reply).get()), 3);
  // Over TCP, garbage closes the connection without an answer.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(interceptor_->port());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_TRUE(WriteFramed(fd, DnsWire(5, 0x01)));
  EXPECT_FALSE(ReadFramed(fd, Clock::now() + kDeadline).has_value());
  close(fd);
  EXPECT_EQ(interceptor_->GetStats().malformed, 3u);
}

TEST_F(DnsInterceptorTest, BlackHoledUpstreamTimesOutWithoutLeakingSockets) {
  // A UDP socket that never answers.
  int hole = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  ASSERT_EQ(bind(hole, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  StartInterceptor(BoundPort(hole), /*timeout_ms=*/100);
  UdpClient client(interceptor_->port());
  size_t fds_before = OpenFdCount();
  for (uint16_t id = 0; id < 5; ++id) client.Send(MakeQuery("b.test", id));
  ASSERT_TRUE(WaitUntil([&] { return interceptor_->GetStats().upstream_timeouts == 5; }));
  EXPECT_TRUE(WaitUntil([&] { return interceptor_->GetStats().outstanding == 0; }));
  EXPECT_EQ(OpenFdCount(), fds_before);
  EXPECT_FALSE(client.ReceiveNow().has_value());
  close(hole);
}

TEST_F(DnsInterceptorTest, OutstandingQueriesAreCapped) {
  int hole = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  ASSERT_EQ(bind(hole, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  StartInterceptor(BoundPort(hole), /*timeout_ms=*/60000, /*max_outstanding=*/2);
  UdpClient client(interceptor_->port());
  for (uint16_t id = 0; id < 3; ++id) client.Send(MakeQuery("b.test", id));
  // Wait for all three to be decided (counted as seen is earlier: before the cap is checked).
  ASSERT_TRUE(WaitUntil([&] {
    auto s = interceptor_->GetStats();
    return s.outstanding + s.overload_dropped == 3;
  }));
  auto stats = interceptor_->GetStats();
  EXPECT_EQ(stats.queries_seen, 3u);
  EXPECT_EQ(stats.outstanding, 2u);
  EXPECT_EQ(stats.queries_passed, 2u);
  EXPECT_EQ(stats.overload_dropped, 1u);
  // Stop closes the outstanding sockets.
  interceptor_->Stop();
  EXPECT_EQ(interceptor_->GetStats().outstanding, 0u);
  close(hole);
}

DnsRule Rule(std::vector<std::string> patterns, v1::DnsFault::Mode mode, bool suffix = false) {
  auto m = DomainMatcher::Create(patterns, suffix);
  EXPECT_TRUE(m.ok());
  DnsRule r{*m};
  r.answer.mode = mode;
  return r;
}

std::vector<std::string> AnswerTexts(const DnsWire& wire) {
  std::vector<std::string> out;
  Pkt pkt = Parse(wire);
  if (!pkt) return out;
  ldns_rr_list* answers = ldns_pkt_answer(pkt.get());
  for (size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i) {
    char* text = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(answers, i), 0));
    out.emplace_back(text);
    std::free(text);
  }
  return out;
}

TEST_F(DnsInterceptorTest, SpoofAnswersAAndAaaaWithTheGivenAddresses) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"db.test"}, v1::DnsFault::SPOOF);
  rule.answer.ipv4 = {"10.77.0.99", "10.77.0.98"};
  rule.answer.ipv6 = {"fd00::99"};
  rule.answer.ttl_s = 7;
  auto counters = interceptor_->AddRule("f1", rule);
  ASSERT_TRUE(counters.ok());
  UdpClient client(interceptor_->port());
  client.Send(MakeQuery("db.test", 1, LDNS_RR_TYPE_A));
  auto a = client.Receive();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(AnswerTexts(*a), (std::vector<std::string>{"10.77.0.99", "10.77.0.98"}));
  EXPECT_EQ(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(Parse(*a).get()), 0)), 7u);
  // TCP as well, for AAAA.
  auto aaaa = TcpQuery(interceptor_->port(), MakeQuery("db.test", 2, LDNS_RR_TYPE_AAAA));
  ASSERT_TRUE(aaaa.has_value());
  EXPECT_EQ(AnswerTexts(*aaaa), (std::vector<std::string>{"fd00::99"}));
  // Another type: NOERROR, no records.
  client.Send(MakeQuery("db.test", 3, LDNS_RR_TYPE_MX));
  auto mx = client.Receive();
  ASSERT_TRUE(mx.has_value());
  EXPECT_EQ(ldns_pkt_get_rcode(Parse(*mx).get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(AnswerTexts(*mx).empty());
  EXPECT_TRUE(WaitUntil([&] { return (*counters)->faulted.load() == 3; }));
  EXPECT_EQ((*counters)->seen.load(), 3u);
  EXPECT_TRUE(upstream_.received().empty());
}

TEST_F(DnsInterceptorTest, RecordTypeRuleFaultsOnlyThatType) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"db.test"}, v1::DnsFault::NXDOMAIN);
  rule.qtypes = {LDNS_RR_TYPE_AAAA};
  auto counters = interceptor_->AddRule("f1", rule);
  ASSERT_TRUE(counters.ok());
  UdpClient client(interceptor_->port());
  DnsWire a = MakeQuery("db.test", 1, LDNS_RR_TYPE_A);
  client.Send(a);
  auto reply_a = client.Receive();
  ASSERT_TRUE(reply_a.has_value());
  EXPECT_EQ(*reply_a, upstream_.sent().at(0));
  client.Send(MakeQuery("db.test", 2, LDNS_RR_TYPE_AAAA));
  auto reply_aaaa = client.Receive();
  ASSERT_TRUE(reply_aaaa.has_value());
  EXPECT_EQ(ldns_pkt_get_rcode(Parse(*reply_aaaa).get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(upstream_.received().size(), 1u);
}

TEST_F(DnsInterceptorTest, SuffixRuleMatchesTheNameAndItsSubdomainsOnly) {
  StartInterceptor(upstream_.port());
  auto counters = interceptor_->AddRule("f1", Rule({"Sandbox.Test"}, v1::DnsFault::REFUSED, true));
  ASSERT_TRUE(counters.ok());
  UdpClient client(interceptor_->port());
  for (const char* name : {"sandbox.test", "a.b.SANDBOX.test.", "notsandbox.test"}) {
    client.Send(MakeQuery(name, 1));
    auto reply = client.Receive();
    ASSERT_TRUE(reply.has_value()) << name;
    bool refused = ldns_pkt_get_rcode(Parse(*reply).get()) == LDNS_RCODE_REFUSED;
    EXPECT_EQ(refused, std::string(name) != "notsandbox.test") << name;
  }
}

TEST_F(DnsInterceptorTest, DelayedAnswerDoesNotHoldUpOtherQueries) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"slow.test"}, v1::DnsFault::DELAY);
  rule.delay_ms = 1500;
  auto counters = interceptor_->AddRule("f1", rule);
  ASSERT_TRUE(counters.ok());
  UdpClient slow(interceptor_->port());
  UdpClient fast(interceptor_->port());
  DnsWire slow_query = MakeQuery("slow.test", 1);
  slow.Send(slow_query);
  ASSERT_TRUE(WaitUntil([&] { return interceptor_->GetStats().delayed_pending == 1; }));
  // While the slow answer waits in the timer queue, another query is answered at once.
  fast.Send(MakeQuery("fast.test", 2));
  ASSERT_TRUE(fast.Receive().has_value());
  EXPECT_EQ((*counters)->faulted.load(), 0u);
  EXPECT_FALSE(slow.ReceiveNow().has_value());
  // The slow one is the upstream's own answer, late.
  auto reply = slow.Receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, upstream_.sent().at(0));
  EXPECT_TRUE(WaitUntil([&] { return (*counters)->faulted.load() == 1; }));
}

TEST_F(DnsInterceptorTest, TcpDelayReturnsTheUpstreamAnswer) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"slow.test"}, v1::DnsFault::DELAY);
  rule.delay_ms = 200;
  rule.jitter_ms = 100;
  auto counters = interceptor_->AddRule("f1", rule);
  ASSERT_TRUE(counters.ok());
  auto reply = TcpQuery(interceptor_->port(), MakeQuery("slow.test", 1));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(*reply, upstream_.sent().at(0));
  EXPECT_TRUE(WaitUntil([&] { return (*counters)->faulted.load() == 1; }));
}

TEST_F(DnsInterceptorTest, ProbabilityFaultsAShareAndPassesTheRest) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"flaky.test"}, v1::DnsFault::SERVFAIL);
  rule.probability = 0.5;
  auto counters = interceptor_->AddRule("f1", rule);
  ASSERT_TRUE(counters.ok());
  UdpClient client(interceptor_->port());
  int servfail = 0, ok = 0;
  for (uint16_t id = 0; id < 200; ++id) {
    client.Send(MakeQuery("flaky.test", id));
    auto reply = client.Receive();
    ASSERT_TRUE(reply.has_value());
    (ldns_pkt_get_rcode(Parse(*reply).get()) == LDNS_RCODE_SERVFAIL ? servfail : ok)++;
  }
  // 2^-200 chance of either being zero with a fair coin.
  EXPECT_GT(servfail, 0);
  EXPECT_GT(ok, 0);
  EXPECT_TRUE(WaitUntil([&] { return (*counters)->faulted.load() == uint64_t(servfail); }));
  EXPECT_EQ((*counters)->passed.load(), uint64_t(ok));
  EXPECT_EQ((*counters)->seen.load(), 200u);
  EXPECT_EQ(upstream_.received().size(), size_t(ok));
}

TEST_F(DnsInterceptorTest, CnameTargetMatchingARuleFaultsTheAnswer) {
  StartInterceptor(upstream_.port());
  auto counters = interceptor_->AddRule("f1", Rule({"target.test"}, v1::DnsFault::SERVFAIL));
  ASSERT_TRUE(counters.ok());
  UdpClient client(interceptor_->port());
  client.Send(MakeQuery("alias.test", 9));
  auto reply = client.Receive();
  ASSERT_TRUE(reply.has_value());
  Pkt pkt = Parse(*reply);
  EXPECT_EQ(ldns_pkt_id(pkt.get()), 9);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_SERVFAIL);
  auto tcp = TcpQuery(interceptor_->port(), MakeQuery("alias.test", 10));
  ASSERT_TRUE(tcp.has_value());
  EXPECT_EQ(ldns_pkt_get_rcode(Parse(*tcp).get()), LDNS_RCODE_SERVFAIL);
  EXPECT_TRUE(WaitUntil([&] { return (*counters)->faulted.load() == 2; }));
  EXPECT_EQ((*counters)->via_cname.load(), 2u);
  // Negative control: an answer without a matching CNAME is relayed as it came.
  client.Send(MakeQuery("other.test", 11));
  auto other = client.Receive();
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(*other, upstream_.sent().back());
}

TEST_F(DnsInterceptorTest, ScopedRuleAppliesOnlyOnItsListener) {
  StartInterceptor(upstream_.port());
  auto port = interceptor_->AddScopedListener("f1");
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  ASSERT_NE(*port, interceptor_->port());
  DnsRule rule = Rule({"db.test"}, v1::DnsFault::NXDOMAIN);
  rule.scope = "f1";
  ASSERT_TRUE(interceptor_->AddRule("f1", rule).ok());
  UdpClient in_scope(*port);
  in_scope.Send(MakeQuery("db.test", 1));
  auto faulted = in_scope.Receive();
  ASSERT_TRUE(faulted.has_value());
  EXPECT_EQ(ldns_pkt_get_rcode(Parse(*faulted).get()), LDNS_RCODE_NXDOMAIN);
  UdpClient outside(interceptor_->port());
  outside.Send(MakeQuery("db.test", 2));
  auto passed = outside.Receive();
  ASSERT_TRUE(passed.has_value());
  EXPECT_EQ(*passed, upstream_.sent().at(0));
  size_t fds = OpenFdCount();
  interceptor_->RemoveScopedListener("f1");
  EXPECT_TRUE(WaitUntil([&] { return OpenFdCount() < fds; }));
}

// Resident set size of this process in kB (VmRSS).
long RssKb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f != nullptr && std::fgets(line, sizeof(line), f)) {
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  }
  if (f != nullptr) std::fclose(f);
  return kb;
}

TEST_F(DnsInterceptorTest, BlackHoledUpstreamUnderLoadKeepsFdsAndMemoryFlat) {
  int hole = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  ASSERT_EQ(bind(hole, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  StartInterceptor(BoundPort(hole), /*timeout_ms=*/50, /*max_outstanding=*/32);
  UdpClient client(interceptor_->port());
  size_t fds_before = 0;
  long rss_after_warmup = 0;
  // Rounds of 100 queries with distinct ids: many hit the cap, the rest time out. The first round
  // warms up (pool socket, receive slots); after it nothing may accumulate.
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    for (uint16_t id = 0; id < 100; ++id) client.Send(MakeQuery("b.test", id));
    ASSERT_TRUE(WaitUntil([&] {
      auto s = interceptor_->GetStats();
      // Every query ends dropped at the cap or timed out (seen alone is counted before either).
      return s.upstream_timeouts + s.overload_dropped == uint64_t(100 * (round + 1)) &&
             s.outstanding == 0;
    }));
    if (round == 0) {
      fds_before = OpenFdCount();
      rss_after_warmup = RssKb();
    }
    EXPECT_EQ(OpenFdCount(), fds_before) << "round " << round;
  }
  // Per-query state is checked exactly above (outstanding == 0, fds equal); RSS catches gross
  // growth such as a receive buffer kept per query (64 KiB x 700 queries), with a loose bound.
  EXPECT_LT(RssKb() - rss_after_warmup, 1024);
  auto s = interceptor_->GetStats();
  EXPECT_EQ(s.queries_seen, uint64_t(100 * kRounds));
  EXPECT_GT(s.overload_dropped, 0u);
  close(hole);
}

int TcpConnect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST_F(DnsInterceptorTest, TcpAnswerOver64KiBIsTruncatedWithTcInsteadOfMisframed) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"many.test"}, v1::DnsFault::SPOOF);
  // 5000 AAAA records are ~140 KB of answer: more than a 2-byte length prefix can frame.
  for (int i = 0; i < 5000; ++i) {
    char text[64];
    std::snprintf(text, sizeof(text), "fd00::%x:%x", i / 65536 + 1, i % 65536);
    rule.answer.ipv6.push_back(text);
  }
  ASSERT_TRUE(interceptor_->AddRule("f1", rule).ok());
  int fd = TcpConnect(interceptor_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteFramed(fd, MakeQuery("many.test", 7, LDNS_RR_TYPE_AAAA)));
  auto big = ReadFramed(fd, Clock::now() + kDeadline);
  ASSERT_TRUE(big.has_value());
  Pkt pkt = Parse(*big);
  ASSERT_NE(pkt, nullptr) << "the frame does not hold one DNS message";
  EXPECT_EQ(ldns_pkt_id(pkt.get()), 7);
  EXPECT_TRUE(ldns_pkt_tc(pkt.get())) << "records were left out without the TC bit";
  const size_t answers = ldns_rr_list_rr_count(ldns_pkt_answer(pkt.get()));
  EXPECT_GT(answers, 1000u);
  EXPECT_LT(answers, 5000u);
  // The stream is still in step: the next query on the same connection gets its own answer.
  ASSERT_TRUE(WriteFramed(fd, MakeQuery("other.test", 8)));
  auto next = ReadFramed(fd, Clock::now() + kDeadline);
  ASSERT_TRUE(next.has_value());
  Pkt next_pkt = Parse(*next);
  ASSERT_NE(next_pkt, nullptr);
  EXPECT_EQ(ldns_pkt_id(next_pkt.get()), 8);
  EXPECT_EQ(AnswerTexts(*next), (std::vector<std::string>{"10.9.9.9"}));
  close(fd);
}

TEST_F(DnsInterceptorTest, TcpQueryArrivingInPiecesIsAnswered) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  int fd = TcpConnect(interceptor_->port());
  ASSERT_GE(fd, 0);
  const DnsWire query = MakeQuery("a.test", 9);
  DnsWire framed = {static_cast<uint8_t>(query.size() >> 8), static_cast<uint8_t>(query.size())};
  framed.insert(framed.end(), query.begin(), query.end());
  // One byte per send, with TCP_NODELAY so each is its own segment: the length prefix and the
  // message both arrive split.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  for (uint8_t byte : framed) {
    ASSERT_EQ(send(fd, &byte, 1, MSG_NOSIGNAL), 1);
    std::this_thread::sleep_for(1ms);
  }
  auto reply = ReadFramed(fd, Clock::now() + kDeadline);
  ASSERT_TRUE(reply.has_value());
  Pkt pkt = Parse(*reply);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);
  close(fd);
}

TEST_F(DnsInterceptorTest, TcpAcceptWithoutFreeFdsBacksOffInsteadOfSpinning) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a = Loopback(interceptor_->port());
  {
    testing::NoFreeFds limit;
    // The handshake completes into the backlog; accept() then fails with EMFILE.
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_TRUE(WaitUntil([&] { return interceptor_->GetStats().tcp_accept_failures >= 1; }));
    // Half a second with the connection pending and no fd free: a loop that polls the readable
    // listener again at once makes hundreds of thousands of attempts; one that backs off, a few.
    std::this_thread::sleep_for(500ms);
    EXPECT_LE(interceptor_->GetStats().tcp_accept_failures, 20u);
  }
  // Fds free again: the pending connection is served.
  ASSERT_TRUE(WriteFramed(fd, MakeQuery("a.test", 5)));
  auto reply = ReadFramed(fd, Clock::now() + kDeadline);
  ASSERT_TRUE(reply.has_value());
  Pkt pkt = Parse(*reply);
  ASSERT_NE(pkt, nullptr);
  EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);
  close(fd);
}

size_t ThreadCount() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST_F(DnsInterceptorTest, TcpConnectionsOverTheCapAreClosedAndStopJoinsEveryWorker) {
  const size_t threads_before = ThreadCount();
  DnsInterceptorOptions o;
  o.upstream = "127.0.0.1:" + std::to_string(upstream_.port());
  o.socket_mark = geteuid() == 0 ? 0x464c : 0;
  o.max_tcp_connections = 2;
  interceptor_ = std::make_unique<DnsInterceptor>(o);
  ASSERT_TRUE(interceptor_->Start().ok());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  // Two clients that stay connected, each answered once (a worker serves each).
  int served[2];
  for (int i = 0; i < 2; ++i) {
    served[i] = TcpConnect(interceptor_->port());
    ASSERT_GE(served[i], 0);
    ASSERT_TRUE(WriteFramed(served[i], MakeQuery("a.test", static_cast<uint16_t>(i + 1))));
    ASSERT_TRUE(ReadFramed(served[i], Clock::now() + kDeadline).has_value());
  }
  // A third is over the cap: closed at once, counted.
  int third = TcpConnect(interceptor_->port());
  ASSERT_GE(third, 0);
  uint8_t byte;
  pollfd p{third, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_EQ(recv(third, &byte, 1, 0), 0);
  EXPECT_EQ(interceptor_->GetStats().tcp_rejected, 1u);
  // The event loop plus at most one worker per allowed connection.
  EXPECT_LE(ThreadCount(), threads_before + 1 + 2);
  // Stop with both clients still connected: every worker is joined, none left behind.
  interceptor_->Stop();
  EXPECT_EQ(ThreadCount(), threads_before);
  for (int fd : {served[0], served[1], third}) close(fd);
}

TEST_F(DnsInterceptorTest, UdpFaultAnswerOverTheClientsSizeIsTruncatedWithTcAndWholeOverTcp) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"many.test"}, v1::DnsFault::SPOOF);
  // 100 A records are ~1.6 KB: over the 512 bytes a query without EDNS allows over UDP.
  for (int i = 0; i < 100; ++i) rule.answer.ipv4.push_back("10.77.1." + std::to_string(i));
  ASSERT_TRUE(interceptor_->AddRule("f1", rule).ok());
  UdpClient client(interceptor_->port());
  client.Send(MakeQuery("many.test", 3));
  auto udp = client.Receive();
  ASSERT_TRUE(udp.has_value());
  EXPECT_LE(udp->size(), 512u);
  Pkt pkt = Parse(*udp);
  ASSERT_NE(pkt, nullptr);
  EXPECT_TRUE(ldns_pkt_tc(pkt.get())) << "records were left out without the TC bit";
  EXPECT_GT(AnswerTexts(*udp).size(), 0u);
  EXPECT_LT(AnswerTexts(*udp).size(), 100u);
  // The client's retry over TCP gets every record, without TC.
  auto tcp = TcpQuery(interceptor_->port(), MakeQuery("many.test", 4));
  ASSERT_TRUE(tcp.has_value());
  Pkt whole = Parse(*tcp);
  ASSERT_NE(whole, nullptr);
  EXPECT_FALSE(ldns_pkt_tc(whole.get()));
  EXPECT_EQ(AnswerTexts(*tcp).size(), 100u);
}

// Delayed answers wait as deadlines in the one event loop: 200 TCP clients and 200 UDP queries,
// all pending at once, cost no thread each (a worker per TCP connection would be 200 threads).
TEST_F(DnsInterceptorTest, TwoHundredDelayedTcpAndUdpQueriesPendWithoutAThreadEach) {
  const size_t threads_before = ThreadCount();
  DnsInterceptorOptions o;
  o.upstream = "127.0.0.1:" + std::to_string(upstream_.port());
  o.socket_mark = geteuid() == 0 ? 0x464c : 0;
  o.max_tcp_connections = 256;
  interceptor_ = std::make_unique<DnsInterceptor>(o);
  ASSERT_TRUE(interceptor_->Start().ok());
  DnsRule rule = Rule({"slow.test"}, v1::DnsFault::NXDOMAIN);
  rule.delay_ms = 4000;
  auto counters = interceptor_->AddRule("f1", rule);
  ASSERT_TRUE(counters.ok());
  constexpr int kQueries = 200;
  std::vector<int> tcp(kQueries, -1);
  UdpClient udp(interceptor_->port());
  for (int i = 0; i < kQueries; ++i) {
    tcp[i] = TcpConnect(interceptor_->port());
    ASSERT_GE(tcp[i], 0);
    ASSERT_TRUE(WriteFramed(tcp[i], MakeQuery("slow.test", static_cast<uint16_t>(i))));
    udp.Send(MakeQuery("slow.test", static_cast<uint16_t>(1000 + i)));
  }
  ASSERT_TRUE(WaitUntil([&] { return interceptor_->GetStats().queries_seen == 2 * kQueries; }));
  const size_t threads_while_pending = ThreadCount();
  // Read after counting the threads: no answer had gone out, so all 400 were pending then.
  ASSERT_EQ(interceptor_->GetStats().queries_faulted, 0u);
  EXPECT_EQ(interceptor_->GetStats().delayed_pending, static_cast<uint64_t>(kQueries));
  EXPECT_LE(threads_while_pending, threads_before + 1);  // the loop thread only
  // Then every one is answered, each on its own connection / with its own id.
  for (int i = 0; i < kQueries; ++i) {
    auto reply = ReadFramed(tcp[i], Clock::now() + kDeadline);
    ASSERT_TRUE(reply.has_value()) << "tcp " << i;
    Pkt pkt = Parse(*reply);
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), i);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), LDNS_RCODE_NXDOMAIN);
    close(tcp[i]);
  }
  std::vector<bool> answered(kQueries, false);
  for (int i = 0; i < kQueries; ++i) {
    auto reply = udp.Receive();
    ASSERT_TRUE(reply.has_value()) << "udp answer " << i;
    Pkt pkt = Parse(*reply);
    ASSERT_NE(pkt, nullptr);
    const int id = ldns_pkt_id(pkt.get()) - 1000;
    ASSERT_TRUE(id >= 0 && id < kQueries);
    EXPECT_FALSE(answered[id]);
    answered[id] = true;
  }
  EXPECT_EQ((*counters)->faulted.load(), 2u * kQueries);
}

// A pass-through query, over TCP and UDP, is answered while a DELAY answer waits in the loop, and
// Stop does not wait the delay out: it closes the waiting client's connection.
TEST_F(DnsInterceptorTest, PassThroughIsAnsweredWhileADelayedTcpAnswerWaits) {
  StartInterceptor(upstream_.port());
  DnsRule rule = Rule({"slow.test"}, v1::DnsFault::DELAY);
  rule.delay_ms = 600000;
  auto counters = interceptor_->AddRule("f1", rule);
  ASSERT_TRUE(counters.ok());
  int slow = TcpConnect(interceptor_->port());
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(WriteFramed(slow, MakeQuery("slow.test", 1)));
  // DELAY forwards first; once the upstream's reply is in (nothing outstanding), it waits.
  ASSERT_TRUE(WaitUntil(
      [&] { return upstream_.sent().size() == 1 && interceptor_->GetStats().outstanding == 0; }));
  auto fast = TcpQuery(interceptor_->port(), MakeQuery("fast.test", 2));
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(*fast, upstream_.sent().at(1));
  UdpClient udp(interceptor_->port());
  udp.Send(MakeQuery("fast.test", 3));
  auto udp_reply = udp.Receive();
  ASSERT_TRUE(udp_reply.has_value());
  EXPECT_EQ(*udp_reply, upstream_.sent().at(2));
  // The delayed answer is still pending.
  pollfd p{slow, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_EQ((*counters)->faulted.load(), 0u);
  interceptor_->Stop();
  uint8_t byte;
  p = {slow, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_LE(recv(slow, &byte, 1, 0), 0);  // closed (FIN or reset), no answer
  close(slow);
}

TEST_F(DnsInterceptorTest, IdleTcpClientIsClosed) {
  DnsInterceptorOptions o;
  o.upstream = "127.0.0.1:" + std::to_string(upstream_.port());
  o.socket_mark = geteuid() == 0 ? 0x464c : 0;
  o.tcp_idle_timeout_ms = 100;
  interceptor_ = std::make_unique<DnsInterceptor>(o);
  ASSERT_TRUE(interceptor_->Start().ok());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  int fd = TcpConnect(interceptor_->port());
  ASSERT_GE(fd, 0);
  // Answered once, then silent: the idle deadline closes it.
  ASSERT_TRUE(WriteFramed(fd, MakeQuery("a.test", 1)));
  ASSERT_TRUE(ReadFramed(fd, Clock::now() + kDeadline).has_value());
  uint8_t byte;
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_EQ(recv(fd, &byte, 1, 0), 0);
  close(fd);
}

// Queries a client sends back to back on one connection are answered in order, a fault answer
// and a relayed one alike.
TEST_F(DnsInterceptorTest, PipelinedTcpQueriesAreAnsweredInOrder) {
  StartInterceptor(upstream_.port());
  AddRule("f1", {"a.test"}, v1::DnsFault::NXDOMAIN);
  int fd = TcpConnect(interceptor_->port());
  ASSERT_GE(fd, 0);
  DnsWire both;
  for (auto [name, id] : {std::pair{"a.test", 1}, std::pair{"b.test", 2}, std::pair{"a.test", 3}}) {
    DnsWire q = MakeQuery(name, static_cast<uint16_t>(id));
    both.push_back(static_cast<uint8_t>(q.size() >> 8));
    both.push_back(static_cast<uint8_t>(q.size()));
    both.insert(both.end(), q.begin(), q.end());
  }
  ASSERT_EQ(send(fd, both.data(), both.size(), MSG_NOSIGNAL), static_cast<ssize_t>(both.size()));
  for (int id : {1, 2, 3}) {
    auto reply = ReadFramed(fd, Clock::now() + kDeadline);
    ASSERT_TRUE(reply.has_value());
    Pkt pkt = Parse(*reply);
    ASSERT_NE(pkt, nullptr);
    EXPECT_EQ(ldns_pkt_id(pkt.get()), id);
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.get()), id == 2 ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN);
  }
  close(fd);
}

TEST(ParseSocketAddressTest, AcceptsNumericAddressesWithOptionalPort) {
  auto v4 = ParseSocketAddress("10.1.2.3", 53);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&v4->storage)->sin_port), 53);
  auto v4p = ParseSocketAddress("127.0.0.1:5353", 53);
  ASSERT_TRUE(v4p.ok());
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&v4p->storage)->sin_port), 5353);
  auto v6 = ParseSocketAddress("::1", 53);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->family(), AF_INET6);
  auto v6p = ParseSocketAddress("[::1]:5353", 53);
  ASSERT_TRUE(v6p.ok());
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in6*>(&v6p->storage)->sin6_port), 5353);
  for (const char* bad :
       {"", "dns.example.com", "1.2.3.4:", "1.2.3.4:99999", "[::1", "1.2.3.4:x"}) {
    EXPECT_FALSE(ParseSocketAddress(bad, 53).ok()) << bad;
  }
}

}  // namespace
}  // namespace faultline::agent::dns
