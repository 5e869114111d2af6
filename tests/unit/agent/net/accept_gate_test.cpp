// AcceptGate as a relay, in front of a plain unix-socket echo server: bytes both ways, the
// half-close passed on, the peer address carried in the relay's name, and the private socket
// directory. The cap with a real mTLS gRPC server is tested in agent_service_tls_test.cpp.
#include "agent/net/accept_gate.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "../no_free_fds.h"

namespace faultline::agent::net {
namespace {

class AcceptGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/gate_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    auto path = PrivateSocketPath(dir_ + "/sock");
    ASSERT_TRUE(path.ok()) << path.status().ToString();
    path_ = *path;
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path_.c_str());
    ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(::listen(listener_, 16), 0);
  }
  void TearDown() override {
    gate_.reset();
    ::close(listener_);
    std::filesystem::remove_all(dir_);
  }

  void StartGate(size_t cap) {
    auto gate = AcceptGate::Start({"127.0.0.1:0", path_, cap});
    ASSERT_TRUE(gate.ok()) << gate.status().ToString();
    gate_ = std::move(gate).value();
  }

  int Connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(gate_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }

  static std::string ReadAll(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  std::string dir_;
  std::string path_;
  int listener_ = -1;
  std::unique_ptr<AcceptGate> gate_;
};

// The client sends, half-closes, and still reads the whole answer: the echo server sees EOF only
// through the gate passing the FIN on, and answers after it.
TEST_F(AcceptGateTest, RelaysBothWaysAndPassesTheHalfCloseOn) {
  StartGate(4);
  const std::string payload(200 * 1024, 'x');  // many times the gate's buffers
  std::string peer_name;
  std::thread echo([&] {
    int fd = ::accept(listener_, nullptr, nullptr);
    sockaddr_un peer{};
    socklen_t len = sizeof(peer);
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    if (len > offsetof(sockaddr_un, sun_path) + 1 && peer.sun_path[0] == '\0') {
      peer_name.assign(peer.sun_path + 1, len - offsetof(sockaddr_un, sun_path) - 1);
    }
    std::string got = ReadAll(fd);  // until the client's FIN arrives through the gate
    (void)!::write(fd, got.data(), got.size());
    ::close(fd);
  });
  int fd = Connect();
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  std::thread writer([&] {
    size_t off = 0;
    while (off < payload.size()) {
      ssize_t n = ::write(fd, payload.data() + off, payload.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
  });
  EXPECT_EQ(ReadAll(fd), payload);
  writer.join();
  echo.join();
  ::close(fd);
  // The relay's unix end is named after the real client, as gRPC's peer() would read it.
  const std::string client = "ipv4:127.0.0.1:" + std::to_string(ntohs(local.sin_port));
  EXPECT_EQ(RemoteAddressOfPeer("unix-abstract:" + peer_name), client) << peer_name;
  EXPECT_EQ(gate_->stats().accepted, 1u);
}

TEST_F(AcceptGateTest, AcceptWithoutFreeFdsBacksOffInsteadOfSpinning) {
  StartGate(4);
  // The client's socket exists before the limit drops; connecting it needs no new fd, and the
  // kernel completes the handshake into the gate's backlog, where accept() fails with EMFILE.
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(c, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(gate_->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  {
    testing::NoFreeFds limit;
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (gate_->stats().accept_failures == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GE(gate_->stats().accept_failures, 1u);
    // Half a second with the connection pending and no fd free: a loop that retries at once
    // (level-triggered readiness) makes hundreds of thousands of attempts; one that backs off,
    // a handful.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_LE(gate_->stats().accept_failures, 20u);
  }
  // Fds free again: the pending connection is relayed.
  std::thread echo([&] {
    int fd = ::accept(listener_, nullptr, nullptr);
    char buf[4];
    size_t got = 0;
    while (got < sizeof(buf)) {
      ssize_t n = ::read(fd, buf + got, sizeof(buf) - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    (void)!::write(fd, buf, got);
    ::close(fd);
  });
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ASSERT_EQ(::write(c, "late", 4), 4);
  EXPECT_EQ(ReadAll(c), "late");
  echo.join();
  ::close(c);
}

TEST_F(AcceptGateTest, RemoteAddressOfPeerDecodesOnlyGateNames) {
  EXPECT_EQ(RemoteAddressOfPeer("unix-abstract:faultline-gate/12/3/ipv6:%5B::1%5D:443"),
            "ipv6:[::1]:443");
  EXPECT_EQ(RemoteAddressOfPeer("unix-abstract:faultline-gate/12/3/ipv4:10.77.0.1:5"),
            "ipv4:10.77.0.1:5");
  // Negative controls: anything else is left as it is.
  EXPECT_EQ(RemoteAddressOfPeer("ipv4:10.77.0.1:5"), "ipv4:10.77.0.1:5");
  EXPECT_EQ(RemoteAddressOfPeer("unix-abstract:other/1/2/ipv4:1.2.3.4:5"),
            "unix-abstract:other/1/2/ipv4:1.2.3.4:5");
  EXPECT_EQ(RemoteAddressOfPeer("unix:"), "unix:");
}

TEST_F(AcceptGateTest, PrivateSocketDirectoryIsOwnerOnly) {
  const std::string dir = dir_ + "/open";
  ASSERT_EQ(::mkdir(dir.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  auto path = PrivateSocketPath(dir);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // A symlink in its place is refused, not followed.
  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(dir.c_str(), link.c_str()), 0);
  EXPECT_FALSE(PrivateSocketPath(link).ok());
}

TEST_F(AcceptGateTest, ZeroCapIsRefused) {
  EXPECT_EQ(AcceptGate::Start({"127.0.0.1:0", path_, 0}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace faultline::agent::net
