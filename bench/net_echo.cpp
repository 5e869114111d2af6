// Tiny TCP/UDP echo for bench/net_bench.sh (a benchmark helper, not product code).
//   net_echo serve PORT                           TCP and UDP echo on 0.0.0.0:PORT until killed
//   net_echo ping tcp|udp HOST PORT COUNT GAP_MS   COUNT sequential round trips of 64 bytes,
//                                                  prints one RTT in microseconds per line
//   net_echo blast HOST PORT SECONDS               unthrottled 16-byte UDP datagrams (sendmmsg,
//                                                  batches of 64); prints packets sent per second
//   net_echo send HOST PORT COUNT                  COUNT 16-byte UDP datagrams, paced (64 per
//                                                  0.5 ms); prints the number sent (attempted)
// TCP: one connection (TCP_NODELAY), write 64 bytes, read 64 bytes back. UDP: a datagram carrying
// its sequence number; replies with another sequence (late ones) are skipped; 5 s timeout each.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

constexpr size_t kSize = 64;

void ServeTcpConn(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, n - off);
      if (w <= 0) {
        close(fd);
        return;
      }
      off += w;
    }
  }
  close(fd);
}

int Serve(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  int one = 1;
  int t = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  if (bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(t, 64) != 0 ||
      bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("bind");
    return 1;
  }
  std::thread([u] {
    char buf[65536];
    for (;;) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(u, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n >= 0) sendto(u, buf, n, 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  }).detach();
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    int c = accept(t, nullptr, nullptr);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::thread(ServeTcpConn, c).detach();
  }
}

int Ping(bool tcp, const char* host, uint16_t port, int count, int gap_ms) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  int one = 1;
  if (tcp) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    return 1;
  }
  char out[kSize], in[kSize];
  std::memset(out, 'x', sizeof out);
  for (uint32_t seq = 0; seq < static_cast<uint32_t>(count); ++seq) {
    std::memcpy(out, &seq, sizeof seq);
    auto t0 = std::chrono::steady_clock::now();
    if (write(fd, out, kSize) != static_cast<ssize_t>(kSize)) return 1;
    bool got = false;
    if (tcp) {
      size_t have = 0;
      while (have < kSize) {
        ssize_t n = read(fd, in + have, kSize - have);
        if (n <= 0) return 1;
        have += n;
      }
      got = true;
    } else {
      for (;;) {
        ssize_t n = read(fd, in, kSize);
        if (n < 0) break;  // timeout: sample lost
        uint32_t s;
        std::memcpy(&s, in, sizeof s);
        if (s == seq) {
          got = true;
          break;
        }
      }
    }
    auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (got) std::printf("%lld\n", static_cast<long long>(us));
    std::fflush(stdout);
    if (gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
  }
  return 0;
}

int Blast(const char* host, uint16_t port, double seconds) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    return 1;
  }
  constexpr int kBatch = 64;
  char payload[16] = {};
  iovec iov[kBatch];
  mmsghdr msgs[kBatch] = {};
  for (int i = 0; i < kBatch; ++i) {
    iov[i] = {payload, sizeof payload};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t sent = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto end = t0 + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int n = sendmmsg(fd, msgs, kBatch, 0);
    if (n > 0) sent += n;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.0f\n", sent / s);
  return 0;
}

}  // namespace

// Paced so that no queue on the way overflows: loss counted by the tests is the fault's alone.
int Send(const char* host, uint16_t port, long count) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    return 1;
  }
  char payload[16] = {};
  long sent = 0;
  while (sent < count) {
    for (int i = 0; i < 64 && sent < count; ++i) {
      // An egress drop in netfilter fails the send (EPERM): it still left the application.
      (void)send(fd, payload, sizeof payload, 0);
      ++sent;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  std::printf("%ld\n", sent);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "serve") return Serve(std::atoi(argv[2]));
  if (argc == 7 && std::string(argv[1]) == "ping") {
    return Ping(std::string(argv[2]) == "tcp", argv[3], std::atoi(argv[4]), std::atoi(argv[5]),
                std::atoi(argv[6]));
  }
  if (argc == 5 && std::string(argv[1]) == "send") {
    return Send(argv[2], static_cast<uint16_t>(std::atoi(argv[3])), std::atol(argv[4]));
  }
  if (argc == 5 && std::string(argv[1]) == "blast") {
    return Blast(argv[2], std::atoi(argv[3]), std::atof(argv[4]));
  }
  std::fprintf(stderr,
               "usage: %s serve PORT | blast HOST PORT SECONDS | send HOST PORT COUNT | ping "
               "tcp|udp HOST PORT COUNT GAP_MS\n",
               argv[0]);
  return 2;
}
