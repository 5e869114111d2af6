#include "agent/dns/internal/tcp_server.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/host/original_destination.h"

namespace faultline::agent::dns::internal {
namespace {

// DNS over TCP: a two-byte big-endian length, then the message. Precondition: the message fits
// (kMaxDnsMessageSize); callers check, since a wrong length would desynchronise the stream.
DnsWire Frame(std::span<const uint8_t> message) {
  DnsWire out;
  out.reserve(message.size() + 2);
  out.push_back(static_cast<uint8_t>(message.size() >> 8));
  out.push_back(static_cast<uint8_t>(message.size() & 0xff));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

enum class Io { kDone, kWait, kFailed };

// Reads into buf[*got..] until full. kWait: nothing more to read now.
Io ReadSome(int fd, std::span<uint8_t> buf, size_t* got) {
  while (*got < buf.size()) {
    ssize_t n = ::recv(fd, buf.data() + *got, buf.size() - *got, 0);
    if (n > 0) {
      *got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return Io::kFailed;  // peer closed
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? Io::kWait : Io::kFailed;
  }
  return Io::kDone;
}

Io WriteSome(int fd, std::span<const uint8_t> buf, size_t* sent) {
  while (*sent < buf.size()) {
    ssize_t n = ::send(fd, buf.data() + *sent, buf.size() - *sent, MSG_NOSIGNAL);
    if (n > 0) {
      *sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? Io::kWait : Io::kFailed;
  }
  return Io::kDone;
}

}  // namespace

// One client connection and, while a query is forwarded, its upstream socket.
struct DnsTcpServer::Conn {
  enum class State { kReadLength, kReadBody, kUpstream, kDelay, kWrite };
  uint64_t id = 0;
  int fd = -1;
  std::string scope;
  SocketAddress upstream;  // the resolver the client connected to, before the redirect
  State state = State::kReadLength;
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  SteadyClock::time_point scheduled = SteadyClock::time_point::max();
  uint32_t client_events = 0;  // registered epoll interest
  uint32_t upstream_events = 0;
  // Reading a query.
  uint8_t length[2] = {0, 0};
  size_t length_got = 0;
  DnsWire message;
  size_t message_got = 0;
  Decision decision;
  // Forwarding it: upstream_fd >= 0 while counted in outstanding.
  int upstream_fd = -1;
  bool connecting = false;
  DnsWire upstream_out;
  size_t upstream_sent = 0;
  uint8_t reply_length[2] = {0, 0};
  size_t reply_length_got = 0;
  DnsWire reply;
  size_t reply_got = 0;
  // Answering it.
  DnsWire out;
  size_t out_sent = 0;
  std::shared_ptr<DnsRuleCounters> answer_counters;  // set: a fault answer (counted when sent)
  int answer_delay_ms = 0;
};

DnsTcpServer::DnsTcpServer(InterceptorCore& core, std::function<void()> on_closed)
    : core_(core), on_closed_(std::move(on_closed)) {}

DnsTcpServer::~DnsTcpServer() { Close(); }

bool DnsTcpServer::Add(int fd, std::string scope) {
  if (conns_.size() >= static_cast<size_t>(std::max(1, core_.options.max_tcp_connections))) {
    return false;
  }
  auto c = std::make_unique<Conn>();
  c->id = next_id_++;
  c->fd = fd;
  c->scope = std::move(scope);
  c->upstream = core_.upstream;
  if (core_.options.forward_to_original_destination) {
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
    auto orig = host::TcpOriginalDestination(fd, local.ss_family);
    SocketAddress self;
    self.storage = local;
    self.length = local_len;
    if (orig.ok() && !(IsLoopback(*orig) && PortOf(*orig) == PortOf(self))) {
      c->upstream = *orig;
      ++core_.counters.orig_dst;
    }
  }
  if (!core_.loop->Watch(fd, 0, TcpClientTag(c->id))) return false;
  Conn& conn = *c;
  conns_.emplace(c->id, std::move(c));
  EnterRead(conn);
  Settle(conn.id, Advance(conn) != Step::kClose);
  return true;
}

void DnsTcpServer::EnterRead(Conn& c) {
  c.state = Conn::State::kReadLength;
  c.length_got = 0;
  c.message_got = 0;
  c.deadline = SteadyClock::now() + std::chrono::milliseconds(core_.options.tcp_idle_timeout_ms);
}

void DnsTcpServer::Interest(Conn& c, uint32_t client, uint32_t upstream) {
  if (client != c.client_events) {
    core_.loop->Rewatch(c.fd, client, TcpClientTag(c.id));
    c.client_events = client;
  }
  if (c.upstream_fd >= 0 && upstream != c.upstream_events) {
    core_.loop->Rewatch(c.upstream_fd, upstream, TcpUpstreamTag(c.id));
    c.upstream_events = upstream;
  }
}

DnsTcpServer::Step DnsTcpServer::Advance(Conn& c) {
  // Frames a client sent back to back are served one after another, at most kFramesPerWake per
  // wake-up so one client cannot hold the loop (level-triggered epoll calls again).
  constexpr int kFramesPerWake = 64;
  for (int i = 0; i < kFramesPerWake; ++i) {
    Step s = StepOnce(c);
    if (s != Step::kAgain) return s;
  }
  if (c.state == Conn::State::kReadLength || c.state == Conn::State::kReadBody) {
    Interest(c, EPOLLIN, 0);
  } else if (c.state == Conn::State::kWrite) {
    Interest(c, EPOLLOUT, 0);
  }
  return Step::kWait;
}

DnsTcpServer::Step DnsTcpServer::StepOnce(Conn& c) {
  switch (c.state) {
    case Conn::State::kReadLength:
    case Conn::State::kReadBody:
      return ReadFrame(c);
    case Conn::State::kUpstream:
      return AdvanceUpstream(c);
    case Conn::State::kDelay:
      Interest(c, 0, 0);  // a reset or hang-up is reported anyway (and closes)
      return Step::kWait;
    case Conn::State::kWrite:
      return Write(c);
  }
  return Step::kClose;
}

DnsTcpServer::Step DnsTcpServer::ReadFrame(Conn& c) {
  if (c.state == Conn::State::kReadLength) {
    Io r = ReadSome(c.fd, c.length, &c.length_got);
    if (r == Io::kFailed) return Step::kClose;
    if (r == Io::kWait) {
      Interest(c, EPOLLIN, 0);
      return Step::kWait;
    }
    c.message.resize((static_cast<size_t>(c.length[0]) << 8) | c.length[1]);
    c.message_got = 0;
    c.state = Conn::State::kReadBody;
    c.deadline = SteadyClock::now() + IoTimeout();
  }
  Io r = ReadSome(c.fd, c.message, &c.message_got);
  if (r == Io::kFailed) return Step::kClose;
  if (r == Io::kWait) {
    Interest(c, EPOLLIN, 0);
    return Step::kWait;
  }
  return Decided(c, core_.rules.Decide(c.message, c.scope, DnsTransport::kTcp));
}

std::chrono::milliseconds DnsTcpServer::IoTimeout() const {
  return std::chrono::milliseconds(std::max(core_.options.upstream_timeout_ms, 1000));
}

DnsTcpServer::Step DnsTcpServer::Decided(Conn& c, Decision d) {
  switch (d.kind) {
    case Decision::Kind::kMalformed:
      // A stream that carried garbage cannot be trusted to be in sync any more.
      return Step::kClose;
    case Decision::Kind::kForward:
      c.decision = std::move(d);
      return StartUpstream(c);
    case Decision::Kind::kDrop:
      // Keep the connection open and silent: the client times out, as with a dead resolver.
      ++core_.counters.faulted;
      DnsRuleTable::CountFaulted(d.counters);
      EnterRead(c);
      return Step::kAgain;
    case Decision::Kind::kRespond:
      break;
  }
  // Fault answers are capped (BuildFaultResponse) and relayed ones arrived framed, so this
  // cannot happen; if it did, closing is right and a wrong length prefix is not.
  if (d.response.size() > kMaxDnsMessageSize) return Step::kClose;
  c.out = Frame(d.response);
  c.out_sent = 0;
  c.answer_counters = std::move(d.counters);
  if (d.delay_ms > 0) {
    // A deadline in the loop: other queries go on meanwhile.
    c.state = Conn::State::kDelay;
    c.deadline = SteadyClock::now() + std::chrono::milliseconds(d.delay_ms);
    Interest(c, 0, 0);
    return Step::kWait;
  }
  c.state = Conn::State::kWrite;
  c.deadline = SteadyClock::now() + IoTimeout();
  return Step::kAgain;
}

DnsTcpServer::Step DnsTcpServer::Write(Conn& c) {
  if (c.answer_counters) {  // counted once, as the answer starts to go out
    ++core_.counters.faulted;
    DnsRuleTable::CountFaulted(c.answer_counters);
    c.answer_counters.reset();
  }
  Io w = WriteSome(c.fd, c.out, &c.out_sent);
  if (w == Io::kFailed) return Step::kClose;
  if (w == Io::kWait) {
    Interest(c, EPOLLOUT, 0);
    return Step::kWait;
  }
  EnterRead(c);
  return Step::kAgain;
}

DnsTcpServer::Step DnsTcpServer::StartUpstream(Conn& c) {
  if (core_.counters.outstanding.load() >= core_.options.max_outstanding) {
    ++core_.counters.overload;
    return Step::kClose;  // closing tells the client to retry elsewhere
  }
  auto fd = core_.OpenUpstreamSocket(SOCK_STREAM, c.upstream);
  if (!fd.ok()) {
    ++core_.counters.upstream_errors;
    return Step::kClose;
  }
  if (!core_.loop->Watch(*fd, EPOLLOUT, TcpUpstreamTag(c.id))) {
    ::close(*fd);
    ++core_.counters.upstream_errors;
    return Step::kClose;
  }
  ++core_.counters.passed;
  ++core_.counters.outstanding;
  c.upstream_fd = *fd;
  c.upstream_events = EPOLLOUT;
  c.connecting = true;
  c.upstream_out = Frame(c.message);  // the message arrived framed: it fits
  c.upstream_sent = 0;
  c.reply_length_got = 0;
  c.reply_got = 0;
  c.reply.clear();
  c.state = Conn::State::kUpstream;
  c.deadline = SteadyClock::now() + std::chrono::milliseconds(core_.options.upstream_timeout_ms);
  Interest(c, 0, EPOLLOUT);
  return Step::kWait;  // the connect completes when the socket turns writable
}

void DnsTcpServer::FinishUpstream(Conn& c) {
  if (c.upstream_fd < 0) return;
  core_.loop->Unwatch(c.upstream_fd);
  ::close(c.upstream_fd);
  c.upstream_fd = -1;
  c.upstream_events = 0;
  --core_.counters.outstanding;
}

DnsTcpServer::Step DnsTcpServer::AdvanceUpstream(Conn& c) {
  auto fail = [&] {
    ++core_.counters.upstream_errors;
    return Step::kClose;
  };
  if (c.connecting) {
    int so_error = 0;
    socklen_t so_len = sizeof(so_error);
    if (getsockopt(c.upstream_fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0) return fail();
    if (so_error != 0) return fail();
    c.connecting = false;
  }
  if (c.upstream_sent < c.upstream_out.size()) {
    Io w = WriteSome(c.upstream_fd, c.upstream_out, &c.upstream_sent);
    if (w == Io::kFailed) return fail();
    if (w == Io::kWait) {
      Interest(c, 0, EPOLLOUT);
      return Step::kWait;
    }
  }
  if (c.reply_length_got < 2) {
    Io r = ReadSome(c.upstream_fd, c.reply_length, &c.reply_length_got);
    if (r == Io::kFailed) return fail();
    if (r == Io::kWait) {
      Interest(c, 0, EPOLLIN);
      return Step::kWait;
    }
    c.reply.resize((static_cast<size_t>(c.reply_length[0]) << 8) | c.reply_length[1]);
  }
  Io r = ReadSome(c.upstream_fd, c.reply, &c.reply_got);
  if (r == Io::kFailed) return fail();
  if (r == Io::kWait) {
    Interest(c, 0, EPOLLIN);
    return Step::kWait;
  }
  FinishUpstream(c);
  Decision d = std::move(c.decision);
  if (!d.counters) {
    d = core_.rules.DecideReply(c.message, c.reply, d.qtype, c.scope, DnsTransport::kTcp);
  }
  if (d.kind == Decision::Kind::kForward) {
    // The upstream's answer: as is, or late for a DELAY rule (counters set).
    d.kind = Decision::Kind::kRespond;
    d.response = std::move(c.reply);
  }
  return Decided(c, std::move(d));
}

void DnsTcpServer::OnEvent(uint64_t tag, uint32_t events) {
  auto it = conns_.find(TagIndex(tag));
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  Step s;
  if (IsTcpUpstreamTag(tag)) {
    // A refused or reset upstream shows in SO_ERROR or the next read/write.
    s = c.state == Conn::State::kUpstream ? Advance(c) : Step::kWait;
  } else if ((events & (EPOLLERR | EPOLLHUP)) != 0 &&
             (c.state == Conn::State::kUpstream || c.state == Conn::State::kDelay)) {
    s = Step::kClose;  // the client is gone: nobody to answer
  } else {
    s = Advance(c);
  }
  Settle(c.id, s != Step::kClose);
}

void DnsTcpServer::Settle(uint64_t id, bool keep) {
  if (!keep) {
    Kill(id);
    return;
  }
  Schedule(*conns_.at(id));
}

void DnsTcpServer::Schedule(Conn& c) {
  if (c.deadline == c.scheduled) return;
  c.scheduled = c.deadline;
  if (c.deadline != SteadyClock::time_point::max()) deadlines_.emplace(c.deadline, c.id);
}

void DnsTcpServer::RunDue(SteadyClock::time_point now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    auto [when, id] = deadlines_.top();
    deadlines_.pop();
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second->scheduled != when) continue;  // stale
    Conn& c = *it->second;
    c.scheduled = SteadyClock::time_point::max();
    bool keep = false;
    if (c.state == Conn::State::kDelay) {
      c.state = Conn::State::kWrite;
      c.deadline = now + IoTimeout();
      keep = Advance(c) != Step::kClose;
    } else if (c.state == Conn::State::kUpstream) {
      ++core_.counters.timeouts;  // closing tells the client to retry elsewhere
    }
    // Idle between frames, or stuck within one: closed.
    Settle(id, keep);
  }
}

SteadyClock::time_point DnsTcpServer::NextDeadline() {
  while (!deadlines_.empty()) {
    auto it = conns_.find(deadlines_.top().second);
    if (it != conns_.end() && it->second->scheduled == deadlines_.top().first) {
      return deadlines_.top().first;
    }
    deadlines_.pop();
  }
  return SteadyClock::time_point::max();
}

void DnsTcpServer::Kill(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  FinishUpstream(c);
  core_.loop->Unwatch(c.fd);
  ::close(c.fd);
  conns_.erase(it);
  if (on_closed_) on_closed_();
}

void DnsTcpServer::Close() {
  while (!conns_.empty()) {
    Conn& c = *conns_.begin()->second;
    FinishUpstream(c);
    core_.loop->Unwatch(c.fd);
    ::close(c.fd);
    conns_.erase(conns_.begin());
  }
  deadlines_ = {};
}

}  // namespace faultline::agent::dns::internal
