#include "agent/nfqueue/delay_line.h"

// <arpa/inet.h> must come before the netfilter headers (DESIGN.md).
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <queue>
#include <sstream>
#include <thread>
#include <vector>

namespace faultline::agent::nfqueue {
namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux, as the timerfd
constexpr size_t kReceiveBuffer = 256 * 1024;
constexpr int kSocketBufferBytes = 16 << 20;
constexpr uint32_t kCopyRange = 64;  // enough for the IP header's length field

struct Held {
  Clock::time_point release;
  uint64_t seq;
  uint32_t id;
  uint32_t bytes;
  Clock::time_point arrival;
  bool operator>(const Held& o) const {
    return release != o.release ? release > o.release : seq > o.seq;
  }
};

// The packet's real length from its IP header (the copy holds only kCopyRange bytes).
uint32_t PacketLength(const unsigned char* data, int copied) {
  if (copied < 4) return static_cast<uint32_t>(std::max(copied, 0));
  if ((data[0] >> 4) == 4) return (uint32_t{data[2]} << 8) | data[3];
  if ((data[0] >> 4) == 6 && copied >= 6) return 40 + ((uint32_t{data[4]} << 8) | data[5]);
  return static_cast<uint32_t>(copied);
}

}  // namespace

DelaySampler::DelaySampler(const DelayLineSettings& settings, uint64_t seed)
    : settings_(settings), state_(seed ? seed : 0x9e3779b97f4a7c15ull) {}

double DelaySampler::Uniform01() {
  // splitmix64: small, fast and good enough for jitter.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

std::chrono::microseconds DelaySampler::Next() {
  if (settings_.jitter.count() == 0) return settings_.delay;
  double r;
  if (settings_.normal_distribution) {
    // Box-Muller; one draw per call keeps the sequence simple.
    double u1 = std::max(Uniform01(), 1e-12), u2 = Uniform01();
    r = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  } else {
    r = Uniform01() * 2.0 - 1.0;
  }
  double c = std::clamp(settings_.correlation, 0.0, 1.0);
  r = c * last_ + (1.0 - c) * r;
  last_ = r;
  double us = static_cast<double>(settings_.delay.count()) +
              r * static_cast<double>(settings_.jitter.count());
  return std::chrono::microseconds(static_cast<int64_t>(std::max(us, 0.0)));
}

Result<std::pair<uint64_t, uint64_t>> ParseQueueProcStats(const std::string& text,
                                                          uint16_t queue_num) {
  // "queue peer_portid queue_total copy_mode copy_range queue_dropped user_dropped id_seq 1"
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    uint64_t f[8];
    int n = 0;
    while (n < 8 && words >> f[n]) ++n;
    if (n >= 7 && f[0] == queue_num) return std::make_pair(f[5], f[6]);
  }
  return NotFound("queue " + std::to_string(queue_num) + " not listed");
}

struct DelayLine::Impl {
  explicit Impl(const DelayLineSettings& s)
      : settings(s), sampler(s, Clock::now().time_since_epoch().count()) {}

  const DelayLineSettings settings;
  DelaySampler sampler;
  nfq_handle* handle = nullptr;
  nfq_q_handle* queue = nullptr;
  int nl_fd = -1;
  int timer_fd = -1;
  int stop_fd = -1;
  std::thread thread;
  std::once_flag stopped;

  // Owned by the thread.
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held;
  uint64_t seq = 0;
  Clock::time_point last_release{};

  mutable std::mutex mu;  // guards stats
  DelayLineStats stats;

  static int OnPacket(nfq_q_handle* qh, nfgenmsg*, nfq_data* nfa, void* data) {
    auto* self = static_cast<Impl*>(data);
    nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
    if (ph == nullptr) return 0;
    uint32_t id = ntohl(ph->packet_id);
    unsigned char* payload = nullptr;
    int copied = nfq_get_payload(nfa, &payload);
    uint32_t bytes = PacketLength(payload, copied);
    Clock::time_point now = Clock::now();
    {
      std::lock_guard lock(self->mu);
      if (self->stats.held_bytes + bytes > self->settings.max_held_bytes ||
          self->stats.held_packets + 1 > self->settings.max_held_packets) {
        ++self->stats.packets_passed_over_bound;
        nfq_set_verdict(qh, id, NF_ACCEPT, 0, nullptr);
        return 0;
      }
      self->stats.held_bytes += bytes;
      ++self->stats.held_packets;
    }
    Clock::time_point release = now + self->sampler.Next();
    if (!self->settings.reorder && release < self->last_release) release = self->last_release;
    self->last_release = release;
    self->held.push({release, self->seq++, id, bytes, now});
    return 0;
  }

  void Release(const Held& h, Clock::time_point now) {
    nfq_set_verdict(queue, h.id, NF_ACCEPT, 0, nullptr);
    auto added = std::chrono::duration_cast<std::chrono::microseconds>(now - h.arrival).count();
    std::lock_guard lock(mu);
    ++stats.packets_delayed;
    stats.bytes_delayed += h.bytes;
    stats.added_delay_sum_us += static_cast<uint64_t>(added);
    stats.added_delay_max_us = std::max<uint64_t>(stats.added_delay_max_us, added);
    stats.held_bytes -= h.bytes;
    --stats.held_packets;
  }

  void ArmTimer() {
    itimerspec spec{};
    if (!held.empty()) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    held.top().release.time_since_epoch())
                    .count();
      if (ns <= 0) ns = 1;
      spec.it_value.tv_sec = ns / 1'000'000'000;
      spec.it_value.tv_nsec = ns % 1'000'000'000;
    }
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  void Loop() {
    // Precise wake-ups: the default 50 us timer slack would show up in every delay.
    prctl(PR_SET_TIMERSLACK, 1UL);
    std::vector<char> buf(kReceiveBuffer);
    pollfd fds[3] = {{nl_fd, POLLIN, 0}, {timer_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    while (true) {
      int n = poll(fds, 3, -1);
      if (n < 0 && errno != EINTR) break;
      if (fds[2].revents & POLLIN) break;
      if (fds[0].revents & POLLIN) {
        while (true) {
          ssize_t r = recv(nl_fd, buf.data(), buf.size(), MSG_DONTWAIT);
          if (r < 0) {
            if (errno == ENOBUFS) {
              std::lock_guard lock(mu);
              ++stats.receive_overruns;
              continue;
            }
            break;  // EAGAIN: drained
          }
          nfq_handle_packet(handle, buf.data(), static_cast<int>(r));
        }
      }
      if (fds[1].revents & POLLIN) {
        uint64_t expirations;
        (void)!read(timer_fd, &expirations, sizeof(expirations));
      }
      Clock::time_point now = Clock::now();
      while (!held.empty() && held.top().release <= now) {
        Release(held.top(), now);
        held.pop();
      }
      ArmTimer();
    }
    // Stopping: nothing stays held (the rule is already gone when the handle stops us).
    Clock::time_point now = Clock::now();
    while (!held.empty()) {
      Release(held.top(), now);
      held.pop();
    }
  }

  void Close() {
    if (queue != nullptr) nfq_destroy_queue(queue);
    if (handle != nullptr) nfq_close(handle);
    if (timer_fd >= 0) close(timer_fd);
    if (stop_fd >= 0) close(stop_fd);
    queue = nullptr;
    handle = nullptr;
    timer_fd = stop_fd = -1;
  }
};

DelayLine::DelayLine(const DelayLineSettings& settings)
    : settings_(settings), impl_(std::make_unique<Impl>(settings)) {}

DelayLine::~DelayLine() { Stop(); }

Result<std::unique_ptr<DelayLine>> DelayLine::Start(const DelayLineSettings& settings) {
  if (settings.delay.count() < 0 || settings.jitter.count() < 0 || settings.max_held_packets == 0) {
    return InvalidArgument("delay line: negative delay/jitter or zero packet bound");
  }
  std::unique_ptr<DelayLine> line(new DelayLine(settings));
  Impl& im = *line->impl_;
  const std::string q = "delay line (queue " + std::to_string(settings.queue_num) + "): ";
  im.handle = nfq_open();
  if (im.handle == nullptr) return Unavailable(q + "nfq_open failed: " + std::strerror(errno));
  im.queue = nfq_create_queue(im.handle, settings.queue_num, &Impl::OnPacket, &im);
  if (im.queue == nullptr) {
    im.Close();
    return Unavailable(q + "cannot bind the queue (in use, or no CAP_NET_ADMIN)");
  }
  bool ok = nfq_set_mode(im.queue, NFQNL_COPY_PACKET, kCopyRange) >= 0 &&
            nfq_set_queue_maxlen(im.queue, settings.max_held_packets) >= 0;
  // Fail-open: when the kernel queue is full it accepts instead of dropping.
  ok = ok && nfq_set_queue_flags(im.queue, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN) >= 0;
  if (!ok) {
    im.Close();
    return Unavailable(q + "cannot configure the queue");
  }
  im.nl_fd = nfq_fd(im.handle);
  setsockopt(im.nl_fd, SOL_SOCKET, SO_RCVBUFFORCE, &kSocketBufferBytes, sizeof(kSocketBufferBytes));
  im.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  im.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (im.timer_fd < 0 || im.stop_fd < 0) {
    im.Close();
    return Internal(q + "timerfd/eventfd: " + std::strerror(errno));
  }
  im.thread = std::thread([&im] { im.Loop(); });
  return line;
}

void DelayLine::Stop() {
  if (!impl_) return;
  std::call_once(impl_->stopped, [this] {
    // Read the kernel's counters while the queue still exists.
    DelayLineStats final_stats = Stats();
    if (impl_->thread.joinable()) {
      uint64_t one = 1;
      (void)!write(impl_->stop_fd, &one, sizeof(one));
      impl_->thread.join();
    }
    impl_->Close();
    std::lock_guard lock(impl_->mu);
    impl_->stats.kernel_dropped = final_stats.kernel_dropped;
    impl_->stats.kernel_user_dropped = final_stats.kernel_user_dropped;
  });
}

DelayLineStats DelayLine::Stats() const {
  DelayLineStats s;
  bool live;
  {
    std::lock_guard lock(impl_->mu);
    s = impl_->stats;
    live = impl_->queue != nullptr;
  }
  if (live) {
    std::ifstream in("/proc/net/netfilter/nfnetlink_queue");
    std::stringstream text;
    text << in.rdbuf();
    auto k = ParseQueueProcStats(text.str(), settings_.queue_num);
    if (k.ok()) {
      s.kernel_dropped = k->first;
      s.kernel_user_dropped = k->second;
    }
  }
  return s;
}

}  // namespace faultline::agent::nfqueue
