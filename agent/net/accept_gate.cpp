#include "agent/net/accept_gate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "agent/host/event_loop.h"
#include "common/tls.h"

namespace faultline::agent::net {
namespace {

using SteadyClock = std::chrono::steady_clock;
using Time = SteadyClock::time_point;

constexpr char kPeerPrefix[] = "unix-abstract:faultline-gate/";
constexpr char kAbstractPrefix[] = "faultline-gate/";
// Epoll tags: a connection's side is (id << 2) | side (0 client, 1 backend); listener i is
// (i << 2) | 2 (never the loop's own two tags, which are all ones but the last bit).
constexpr auto kRefusalLogPeriod = std::chrono::seconds(10);

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void CloseWithReset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

// gRPC's spelling of a TCP peer: "ipv4:1.2.3.4:5" / "ipv6:[::1]:5".
std::string PeerUri(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return std::string("ipv4:") + host + ":" + std::to_string(ntohs(in->sin_port));
  }
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
  if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {  // as gRPC names it: a dual-stack IPv4 peer
    ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
    return std::string("ipv4:") + host + ":" + std::to_string(ntohs(in6->sin6_port));
  }
  ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
  return std::string("ipv6:[") + host + "]:" + std::to_string(ntohs(in6->sin6_port));
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One direction's bytes in flight: read from one side into [begin, end), written to the other.
struct Buffer {
  std::unique_ptr<char[]> data;
  size_t begin = 0;
  size_t end = 0;
  bool empty() const { return begin == end; }
};

struct Conn {
  int fd[2] = {-1, -1};           // client (TCP), backend (unix)
  Buffer from[2];                 // bytes read from side i, to be written to side 1 - i
  bool eof[2] = {false, false};   // side i sent its last byte
  bool shut[2] = {false, false};  // we shut down writing to side i
  uint32_t interest[2] = {0, 0};
};

}  // namespace

struct AcceptGate::Impl : host::EventLoop::Handler {
  AcceptGateOptions options;
  std::unique_ptr<host::EventLoop> loop;
  std::vector<int> listeners;
  uint16_t port = 0;

  // Loop thread only.
  std::unordered_map<uint64_t, Conn> conns;
  uint64_t next_id = 1;
  uint64_t next_name = 0;
  bool paused = false;
  Time refusal_logged{};
  uint64_t refused_since_log = 0;

  std::atomic<uint64_t> open{0}, accepted{0}, refused{0}, backend_failures{0}, accept_failures{0};

  // ---- host::EventLoop::Handler ----
  void OnEvent(uint64_t tag, uint32_t events) override {
    if ((tag & 3) == 2) {
      Accept(static_cast<size_t>(tag >> 2));
    } else {
      OnConnEvent(tag >> 2, static_cast<int>(tag & 1), events);
    }
  }
  void OnTimer() override { Resume(); }

  void SetInterest(int fd, uint64_t tag, uint32_t events) { loop->Rewatch(fd, events, tag); }

  // ---- accepting ----
  void Pause() {
    if (paused) return;
    paused = true;
    for (size_t i = 0; i < listeners.size(); ++i) SetInterest(listeners[i], (i << 2) | 2, 0);
    loop->ArmTimer(SteadyClock::now() + host::kAcceptBackoff);
  }

  void Resume() {
    if (!paused) return;
    paused = false;
    for (size_t i = 0; i < listeners.size(); ++i) SetInterest(listeners[i], (i << 2) | 2, EPOLLIN);
    loop->ArmTimer(host::kNoDeadline);
  }

  void Accept(size_t which) {
    const int lfd = listeners[which];
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof(peer);
      int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (host::IsAcceptExhaustion(errno)) {
          if (accept_failures++ == 0) {
            spdlog::warn("accept gate: accept: {} (pausing the listener)", std::strerror(errno));
          }
          Pause();
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          spdlog::warn("accept gate: accept: {}", std::strerror(errno));
        }
        return;
      }
      if (conns.size() >= options.max_connections) {
        ++refused;
        LogRefusal(peer);
        CloseWithReset(fd);
        continue;
      }
      StartRelay(fd, peer);
    }
  }

  // One line for the first refusal, then at most one per kRefusalLogPeriod with the count.
  void LogRefusal(const sockaddr_storage& peer) {
    ++refused_since_log;
    const Time now = SteadyClock::now();
    if (refusal_logged != Time{} && now - refusal_logged < kRefusalLogPeriod) return;
    spdlog::warn(
        "accept gate: {} connection(s) refused: {} open, the cap (--max-connections); latest "
        "from {}",
        refused_since_log, conns.size(), PeerUri(peer));
    refusal_logged = now;
    refused_since_log = 0;
  }

  // A unix socket connected to gRPC, its own end named after `peer` (see the header), or -1.
  int ConnectBackend(const sockaddr_storage& peer) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un name{};
    name.sun_family = AF_UNIX;
    const std::string label = std::string(kAbstractPrefix) + std::to_string(::getpid()) + "/" +
                              std::to_string(next_name++) + "/" + PeerUri(peer);
    // An abstract name (leading NUL). If another process squats it, the connection goes
    // unnamed: gRPC then sees "unix:" and the audit line loses the address, not the call.
    const size_t len = std::min(label.size(), sizeof(name.sun_path) - 1);
    std::memcpy(name.sun_path + 1, label.data(), len);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&name),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + len)) != 0) {
      spdlog::debug("accept gate: naming the relay of {}: {}", PeerUri(peer), std::strerror(errno));
    }
    sockaddr_un backend{};
    backend.sun_family = AF_UNIX;
    std::memcpy(backend.sun_path, options.backend_path.data(), options.backend_path.size());
    // A unix connect completes at once or fails (EAGAIN when gRPC's backlog is full).
    if (::connect(fd, reinterpret_cast<sockaddr*>(&backend), sizeof(backend)) != 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      return -1;
    }
    return fd;
  }

  void StartRelay(int client, const sockaddr_storage& peer) {
    int backend = ConnectBackend(peer);
    if (backend < 0) {
      const int err = errno;
      if (backend_failures++ == 0) {
        spdlog::warn("accept gate: connecting to the gRPC socket {}: {}", options.backend_path,
                     std::strerror(err));
      }
      if (host::IsAcceptExhaustion(err)) Pause();
      CloseWithReset(client);
      return;
    }
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const uint64_t id = next_id++;
    Conn& c = conns[id];
    c.fd[0] = client;
    c.fd[1] = backend;
    for (int side = 0; side < 2; ++side) {
      c.from[side].data = std::make_unique<char[]>(options.buffer_bytes);
      c.interest[side] = EPOLLIN;
      loop->Watch(c.fd[side], EPOLLIN, (id << 2) | static_cast<uint64_t>(side));
    }
    ++accepted;
    open.store(conns.size());
  }

  // ---- relaying ----
  void OnConnEvent(uint64_t id, int side, uint32_t events) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = it->second;
    if (!Pump(c)) {
      Close(id);
      return;
    }
    // A side gone altogether (closed both ways, or reset): what it sent has been read and passed
    // on as far as the other side takes it now, and nothing can reach it any more. gRPC never
    // half-closes, so this is how its handshake deadline and idle timeout reach the client. A
    // TCP client that only half-closed (FIN) is not HUP: the relay then goes on the other way.
    if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
      Close(id);
      return;
    }
    if (c.eof[0] && c.eof[1] && c.from[0].empty() && c.from[1].empty()) {
      Close(id);
      return;
    }
    UpdateInterest(id, c);
  }

  // Moves what can move now, both ways. False when the connection must end (an error).
  bool Pump(Conn& c) {
    for (int src = 0; src < 2; ++src) {
      const int dst = 1 - src;
      Buffer& b = c.from[src];
      while (true) {
        if (!b.empty()) {
          ssize_t n = ::send(c.fd[dst], b.data.get() + b.begin, b.end - b.begin, MSG_NOSIGNAL);
          if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            return false;
          }
          b.begin += static_cast<size_t>(n);
          if (!b.empty()) break;  // the other side's buffer is full
          b.begin = b.end = 0;
        }
        if (c.eof[src]) break;
        ssize_t n = ::recv(c.fd[src], b.data.get(), options.buffer_bytes, 0);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          return false;
        }
        if (n == 0) {
          c.eof[src] = true;
          break;
        }
        b.end = static_cast<size_t>(n);
      }
      if (c.eof[src] && b.empty() && !c.shut[dst]) {
        ::shutdown(c.fd[dst], SHUT_WR);  // pass the half-close on
        c.shut[dst] = true;
      }
    }
    return true;
  }

  void UpdateInterest(uint64_t id, Conn& c) {
    for (int side = 0; side < 2; ++side) {
      uint32_t want = 0;
      if (!c.eof[side] && c.from[side].empty()) want |= EPOLLIN;
      if (!c.from[1 - side].empty()) want |= EPOLLOUT;
      if (want == c.interest[side]) continue;
      c.interest[side] = want;
      SetInterest(c.fd[side], (id << 2) | static_cast<uint64_t>(side), want);
    }
  }

  void Close(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    for (int& fd : it->second.fd) {
      loop->Unwatch(fd);
      CloseFd(fd);
    }
    conns.erase(it);
    open.store(conns.size());
    Resume();  // its fds are free again
  }
};

AcceptGate::AcceptGate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AcceptGate::~AcceptGate() {
  Stop();
  for (int& fd : impl_->listeners) CloseFd(fd);
}

namespace {

// Binds every address `host` resolves to on one port (`port`, or the first one picked when 0).
Status BindAll(const std::string& listen, std::vector<int>* fds, uint16_t* bound_port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return InvalidArgument("accept gate: '" + listen + "': want HOST:PORT");
  }
  const std::string host = HostOf(listen);
  const std::string port_text = listen.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text.c_str(), &hints, &found);
  if (rc != 0) {
    return InvalidArgument("accept gate: '" + listen + "': " + ::gai_strerror(rc));
  }
  uint16_t port = static_cast<uint16_t>(std::stoi(port_text));
  std::string error;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    sockaddr_storage addr{};
    std::memcpy(&addr, a->ai_addr, a->ai_addrlen);
    if (a->ai_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
    }
    int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), a->ai_addrlen) != 0 ||
        ::listen(fd, SOMAXCONN) != 0) {
      error = std::strerror(errno);
      if (fd >= 0) ::close(fd);
      continue;
    }
    if (port == 0) {
      sockaddr_storage got{};
      socklen_t len = sizeof(got);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len);
      port = ntohs(got.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&got)->sin_port
                                            : reinterpret_cast<sockaddr_in6*>(&got)->sin6_port);
    }
    fds->push_back(fd);
  }
  ::freeaddrinfo(found);
  if (fds->empty()) return Unavailable("accept gate: cannot listen on " + listen + ": " + error);
  *bound_port = port;
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<AcceptGate>> AcceptGate::Start(const AcceptGateOptions& options) {
  if (options.max_connections == 0) {
    return InvalidArgument("accept gate: max_connections must be at least 1");
  }
  if (options.backend_path.empty() ||
      options.backend_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return InvalidArgument("accept gate: backend socket path empty or too long");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->options.buffer_bytes = std::max<size_t>(options.buffer_bytes, 1024);
  std::unique_ptr<AcceptGate> gate(new AcceptGate(std::move(impl)));
  Impl& g = *gate->impl_;
  if (Status s = BindAll(options.listen, &g.listeners, &g.port); !s.ok()) return s;
  auto loop = host::EventLoop::Create();
  if (!loop.ok()) return Internal("accept gate: " + loop.status().message());
  g.loop = std::move(loop).value();
  for (size_t i = 0; i < g.listeners.size(); ++i) {
    if (!g.loop->Watch(g.listeners[i], EPOLLIN, (i << 2) | 2)) {
      return Internal(std::string("accept gate: epoll_ctl: ") + std::strerror(errno));
    }
  }
  if (Status s = g.loop->Start(g); !s.ok()) return s;
  return gate;
}

void AcceptGate::Stop() {
  Impl& g = *impl_;
  if (g.loop == nullptr) return;
  g.loop->Stop();  // joins the loop thread: what follows runs alone
  while (!g.conns.empty()) g.Close(g.conns.begin()->first);
  for (int& fd : g.listeners) CloseFd(fd);
}

uint16_t AcceptGate::port() const { return impl_->port; }

AcceptGateStats AcceptGate::stats() const {
  AcceptGateStats s;
  s.open = impl_->open.load();
  s.accepted = impl_->accepted.load();
  s.refused = impl_->refused.load();
  s.backend_failures = impl_->backend_failures.load();
  s.accept_failures = impl_->accept_failures.load();
  return s;
}

std::string RemoteAddressOfPeer(const std::string& peer) {
  if (peer.rfind(kPeerPrefix, 0) != 0) return peer;
  // faultline-gate/<pid>/<n>/<address>: the address follows the third slash.
  size_t at = sizeof(kPeerPrefix) - 1;
  for (int i = 0; i < 2; ++i) {
    at = peer.find('/', at);
    if (at == std::string::npos) return peer;
    ++at;
  }
  // gRPC percent-encodes the name as a URI path ('[' and ']' of an IPv6 address).
  std::string out;
  for (size_t i = at; i < peer.size(); ++i) {
    if (peer[i] == '%' && i + 2 < peer.size() && HexDigit(peer[i + 1]) >= 0 &&
        HexDigit(peer[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(peer[i + 1]) * 16 + HexDigit(peer[i + 2]));
      i += 2;
    } else {
      out += peer[i];
    }
  }
  return out;
}

Result<std::string> PrivateSocketPath(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Internal("mkdir " + dir + ": " + std::strerror(errno));
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return FailedPrecondition(dir + ": not a directory of ours (" + std::strerror(errno) + ")");
  }
  struct stat st {};
  Status status = Status::Ok();
  if (::fstat(fd, &st) != 0) {
    status = Internal("stat " + dir + ": " + std::strerror(errno));
  } else if (st.st_uid != ::geteuid()) {
    status = FailedPrecondition(dir + ": belongs to uid " + std::to_string(st.st_uid) +
                                ", not to this process; remove it");
  } else if ((st.st_mode & 07777) != 0700 && ::fchmod(fd, 0700) != 0) {
    status = Internal("chmod 0700 " + dir + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (!status.ok()) return status;
  const std::string path = dir + "/grpc.sock";
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return FailedPrecondition("the gRPC socket path " + path + " is longer than " +
                              std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                              " bytes: use a shorter --state-dir");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Internal("unlink " + path + ": " + std::strerror(errno));
  }
  return path;
}

}  // namespace faultline::agent::net
