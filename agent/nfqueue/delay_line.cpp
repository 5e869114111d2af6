#include "agent/nfqueue/delay_line.h"

// <arpa/inet.h> must come before the netfilter headers (DESIGN.md).
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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
constexpr int kSocketBufferBytes = 16 << 20;
constexpr uint32_t kCopyRange = 64;  // hold mode: enough for the IP header's length field
constexpr uint32_t kFullCopy = 0xffff;
constexpr size_t kBatch = 32;  // netlink messages per recvmmsg
constexpr size_t kHoldBuffer = 2048;
constexpr size_t kReinjectBuffer = 0x10000 + 1024;
constexpr int64_t kMaxCompensationUs = 1000;

struct Held {
  Clock::time_point release;
  uint64_t seq;
  uint32_t id;
  uint32_t bytes;
  Clock::time_point arrival;
  uint32_t mark;
  std::vector<unsigned char> copy;  // reinject mode: the whole packet
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

LossModel::LossModel(double percent, double correlation, uint64_t seed)
    : state_(seed ? seed : 0x2545f4914f6cdd1dull) {
  double p = std::clamp(percent / 100.0, 0.0, 1.0);
  double c = std::clamp(correlation, 0.0, 1.0);
  p_after_drop_ = c + (1.0 - c) * p;
  p_after_keep_ = p >= 1.0 ? 1.0 : p * (1.0 - p_after_drop_) / (1.0 - p);
}

bool LossModel::Drop() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  double u = static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
  last_ = u < (last_ ? p_after_drop_ : p_after_keep_);
  return last_;
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
      : settings(s),
        sampler(s, Clock::now().time_since_epoch().count()),
        loss(s.loss_percent, s.loss_correlation, Clock::now().time_since_epoch().count() ^ 0x5bd1) {
  }

  const DelayLineSettings settings;
  DelaySampler sampler;
  LossModel loss;
  nfq_handle* handle = nullptr;
  nfq_q_handle* queue = nullptr;
  int nl_fd = -1;
  int timer_fd = -1;
  int stop_fd = -1;
  int raw4 = -1;
  int raw6 = -1;
  std::thread thread;
  std::once_flag stopped;

  // Owned by the thread.
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held;
  uint64_t seq = 0;
  Clock::time_point last_release{};
  DelayLineStats local;          // the thread's counters, published to `stats` once per wake-up
  uint32_t drop_through_id = 0;  // reinject: originals up to this id get a batched DROP
  bool drop_pending = false;
  Clock::duration compensation{0};  // timer armed this much early: the measured wake-up lag
  Clock::time_point armed_at{};     // when the timer is due
  bool armed_future = false;        // armed for a future instant: its wake-up lag is a sample

  mutable std::mutex mu;  // guards stats
  DelayLineStats stats;

  static int OnPacket(nfq_q_handle* qh, nfgenmsg*, nfq_data* nfa, void* data) {
    auto* self = static_cast<Impl*>(data);
    nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
    if (ph == nullptr) return 0;
    const DelayLineSettings& s = self->settings;
    DelayLineStats& st = self->local;
    uint32_t id = ntohl(ph->packet_id);
    unsigned char* payload = nullptr;
    int copied = nfq_get_payload(nfa, &payload);
    uint32_t bytes = PacketLength(payload, copied);
    uint32_t mark = nfq_get_nfmark(nfa);
    Clock::time_point now = Clock::now();
    ++st.packets_received;
    st.bytes_received += bytes;
    if (s.loss_percent > 0 && self->loss.Drop()) {
      ++st.packets_dropped;
      st.bytes_dropped += bytes;
      if (s.reinject) {
        self->MarkDropped(id);
      } else {
        nfq_set_verdict(qh, id, NF_DROP, 0, nullptr);
      }
      return 0;
    }
    bool copy_ok = !s.reinject || (copied > 0 && static_cast<uint32_t>(copied) >= bytes);
    if (!copy_ok || st.held_bytes + bytes > s.max_held_bytes ||
        st.held_packets + 1 > s.max_held_packets) {
      // Over the bound (or a copy we could not send again): the original goes on at once. This
      // verdict precedes the batched DROP that covers its id, so it wins.
      ++st.packets_passed_over_bound;
      nfq_set_verdict2(qh, id, NF_ACCEPT, mark & ~s.clear_mark, 0, nullptr);
      return 0;
    }
    st.held_bytes += bytes;
    ++st.held_packets;
    Clock::time_point release = now + self->sampler.Next();
    if (!s.reorder && release < self->last_release) release = self->last_release;
    self->last_release = release;
    Held h{release, self->seq++, id, bytes, now, mark, {}};
    if (s.reinject) {
      h.copy.assign(payload, payload + bytes);
      self->MarkDropped(id);
    }
    self->held.push(std::move(h));
    return 0;
  }

  void MarkDropped(uint32_t id) {
    drop_through_id = id;
    drop_pending = true;
  }

  // One verdict for every original copied or lost since the last call (reinject mode).
  void FlushDrops() {
    if (!drop_pending) return;
    nfq_set_verdict_batch(queue, drop_through_id, NF_DROP);
    drop_pending = false;
  }

  void Account(const Held& h, Clock::time_point now, bool sent) {
    local.held_bytes -= h.bytes;
    --local.held_packets;
    if (!sent) {
      ++local.reinject_errors;
      return;
    }
    auto added = std::chrono::duration_cast<std::chrono::microseconds>(now - h.arrival).count();
    ++local.packets_delayed;
    local.bytes_delayed += h.bytes;
    local.added_delay_sum_us += static_cast<uint64_t>(added);
    local.added_delay_max_us = std::max<uint64_t>(local.added_delay_max_us, added);
  }

  // Sends the copies of `due` through the raw sockets, batched per address family.
  void SendCopies(std::vector<Held>& due, Clock::time_point now) {
    size_t i = 0;
    std::vector<mmsghdr> msgs;
    std::vector<iovec> iovs;
    std::vector<sockaddr_storage> addrs;
    while (i < due.size()) {
      bool v6 = (due[i].copy[0] >> 4) == 6;
      size_t j = i;
      msgs.clear();
      iovs.clear();
      addrs.clear();
      while (j < due.size() && ((due[j].copy[0] >> 4) == 6) == v6) ++j;
      msgs.resize(j - i);
      iovs.resize(j - i);
      addrs.resize(j - i);
      for (size_t k = i; k < j; ++k) {
        const auto& c = due[k].copy;
        sockaddr_storage& a = addrs[k - i];
        std::memset(&a, 0, sizeof(a));
        socklen_t len;
        if (v6) {
          auto* a6 = reinterpret_cast<sockaddr_in6*>(&a);
          a6->sin6_family = AF_INET6;
          if (c.size() >= 40) std::memcpy(&a6->sin6_addr, c.data() + 24, 16);
          len = sizeof(sockaddr_in6);
        } else {
          auto* a4 = reinterpret_cast<sockaddr_in*>(&a);
          a4->sin_family = AF_INET;
          if (c.size() >= 20) std::memcpy(&a4->sin_addr, c.data() + 16, 4);
          len = sizeof(sockaddr_in);
        }
        iovs[k - i] = {const_cast<unsigned char*>(c.data()), c.size()};
        msghdr& m = msgs[k - i].msg_hdr;
        m = {};
        m.msg_name = &a;
        m.msg_namelen = len;
        m.msg_iov = &iovs[k - i];
        m.msg_iovlen = 1;
      }
      int fd = v6 ? raw6 : raw4;
      size_t done = 0;
      while (done < msgs.size()) {
        int n = fd < 0 ? -1 : sendmmsg(fd, msgs.data() + done, msgs.size() - done, 0);
        if (n <= 0) {
          Account(due[i + done], now, false);  // this copy failed; go on with the next
          ++done;
          continue;
        }
        for (int k = 0; k < n; ++k) Account(due[i + done + k], now, true);
        done += n;
      }
      i = j;
    }
  }

  // Releases every packet due by `now` (all of them when `all`).
  void ReleaseDue(Clock::time_point now, bool all) {
    std::vector<Held> due;
    while (!held.empty() && (all || held.top().release <= now)) {
      due.push_back(held.top());
      held.pop();
    }
    if (due.empty()) return;
    if (settings.reinject) {
      SendCopies(due, now);
      return;
    }
    // In arrival order every queued packet with a smaller id is released now or was verdicted
    // already, so one batched verdict per run of equal marks releases the run.
    for (size_t i = 0; i < due.size(); ++i) {
      uint32_t mark = due[i].mark & ~settings.clear_mark;
      bool run_ends = i + 1 == due.size() || due[i + 1].mark != due[i].mark;
      if (settings.reorder) {
        nfq_set_verdict2(queue, due[i].id, NF_ACCEPT, mark, 0, nullptr);
      } else if (run_ends) {
        nfq_set_verdict_batch2(queue, due[i].id, NF_ACCEPT, mark);
      }
      Account(due[i], now, true);
    }
  }

  void ArmTimer() {
    itimerspec spec{};
    armed_future = false;
    if (!held.empty()) {
      armed_at = held.top().release - compensation;
      armed_future = armed_at > Clock::now();
      auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(armed_at.time_since_epoch()).count();
      if (ns <= 0) ns = 1;
      spec.it_value.tv_sec = ns / 1'000'000'000;
      spec.it_value.tv_nsec = ns % 1'000'000'000;
    }
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  // After a timer wake-up: learns the wake-up lag (EWMA, 1/4) and, when woken early by the
  // compensation, waits out the remaining few microseconds so nothing leaves before its time.
  void OnTimer(Clock::time_point woke, bool sample) {
    if (armed_future && sample) {
      Clock::duration lag = woke - armed_at;  // how late the kernel woke us
      compensation += (lag - compensation) / 4;
      compensation = std::clamp<Clock::duration>(compensation, Clock::duration::zero(),
                                                 std::chrono::microseconds(kMaxCompensationUs));
    }
    if (!held.empty()) {
      Clock::time_point due = held.top().release;
      if (due > woke && due - woke <= std::chrono::microseconds(kMaxCompensationUs)) {
        while (Clock::now() < due) {
        }
      }
    }
  }

  void Publish() {
    local.timer_compensation_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(compensation).count();
    std::lock_guard lock(mu);
    uint64_t overruns = stats.receive_overruns;
    stats = local;
    stats.receive_overruns = overruns;
  }

  void Loop() {
    // Precise wake-ups: the default 50 us timer slack would show up in every delay.
    prctl(PR_SET_TIMERSLACK, 1UL);
    if (settings.realtime_priority > 0) {
      sched_param p{};
      p.sched_priority = settings.realtime_priority;
      local.realtime = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) == 0;
    }
    const size_t buf_size = settings.reinject ? kReinjectBuffer : kHoldBuffer;
    std::vector<char> bufs(kBatch * buf_size);
    std::vector<mmsghdr> msgs(kBatch);
    std::vector<iovec> iovs(kBatch);
    for (size_t i = 0; i < kBatch; ++i) {
      iovs[i] = {bufs.data() + i * buf_size, buf_size};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    pollfd fds[3] = {{nl_fd, POLLIN, 0}, {timer_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    while (true) {
      int n = poll(fds, 3, -1);
      if (n < 0 && errno != EINTR) break;
      if (fds[2].revents & POLLIN) break;
      if (fds[1].revents & POLLIN) {
        uint64_t expirations;
        (void)!read(timer_fd, &expirations, sizeof(expirations));
        // Only a wake-up by the timer alone measures the kernel's wake-up lag; with packets
        // pending the loop was busy, and that backlog is not a lag to arm earlier for.
        OnTimer(Clock::now(), !(fds[0].revents & POLLIN));
      }
      if (fds[0].revents & POLLIN) {
        while (true) {
          int r = recvmmsg(nl_fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
          if (r < 0) {
            if (errno == ENOBUFS) {
              std::lock_guard lock(mu);
              ++stats.receive_overruns;
              continue;
            }
            break;  // EAGAIN: drained
          }
          for (int i = 0; i < r; ++i) {
            nfq_handle_packet(handle, bufs.data() + i * buf_size,
                              static_cast<int>(msgs[i].msg_len));
          }
          FlushDrops();
          if (static_cast<size_t>(r) < kBatch) break;
        }
      }
      ReleaseDue(Clock::now(), false);
      ArmTimer();
      Publish();
    }
    // Stopping: nothing stays held (the rule is already gone when the handle stops us).
    FlushDrops();
    ReleaseDue(Clock::now(), true);
    Publish();
  }

  void Close() {
    if (queue != nullptr) nfq_destroy_queue(queue);
    if (handle != nullptr) nfq_close(handle);
    for (int* fd : {&timer_fd, &stop_fd, &raw4, &raw6}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
    queue = nullptr;
    handle = nullptr;
  }
};

DelayLine::DelayLine(const DelayLineSettings& settings)
    : settings_(settings), impl_(std::make_unique<Impl>(settings)) {}

DelayLine::~DelayLine() { Stop(); }

Result<std::unique_ptr<DelayLine>> DelayLine::Start(const DelayLineSettings& settings) {
  if (settings.delay.count() < 0 || settings.jitter.count() < 0 || settings.max_held_packets == 0) {
    return InvalidArgument("delay line: negative delay/jitter or zero packet bound");
  }
  if (!(settings.loss_percent >= 0 && settings.loss_percent <= 100) ||
      !(settings.loss_correlation >= 0 && settings.loss_correlation <= 1)) {
    return InvalidArgument("delay line: loss percent must be 0..100, correlation 0..1");
  }
  if (settings.reinject && settings.bypass_mark == 0) {
    return InvalidArgument("delay line: reinject needs a bypass mark");
  }
  if (settings.realtime_priority < 0 || settings.realtime_priority > 99) {
    return InvalidArgument("delay line: realtime priority must be 0..99");
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
  bool ok =
      nfq_set_mode(im.queue, NFQNL_COPY_PACKET, settings.reinject ? kFullCopy : kCopyRange) >= 0 &&
      nfq_set_queue_maxlen(im.queue, settings.max_held_packets) >= 0;
  // Fail-open: when the kernel queue is full it accepts instead of dropping. Hold mode takes
  // GSO/GRO packets whole (nothing is modified, so unfinished checksums do not matter); reinject
  // needs them segmented by the kernel, with checksums, to send the copies again.
  // Loss lines want them segmented too: each wire packet is its own draw, not a 64 KB burst.
  bool whole = !settings.reinject && settings.loss_percent == 0;
  uint32_t flags = NFQA_CFG_F_FAIL_OPEN | (whole ? NFQA_CFG_F_GSO : 0);
  ok = ok && nfq_set_queue_flags(im.queue, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO, flags) >= 0;
  if (!ok) {
    im.Close();
    return Unavailable(q + "cannot configure the queue");
  }
  im.nl_fd = nfq_fd(im.handle);
  setsockopt(im.nl_fd, SOL_SOCKET, SO_RCVBUFFORCE, &kSocketBufferBytes, sizeof(kSocketBufferBytes));
  setsockopt(im.nl_fd, SOL_SOCKET, SO_RCVBUF, &kSocketBufferBytes, sizeof(kSocketBufferBytes));
  if (settings.reinject) {
    // IPPROTO_RAW implies IP_HDRINCL (and IPV6_HDRINCL): the copies go out as they were.
    im.raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    im.raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (im.raw4 < 0) {
      im.Close();
      return Unavailable(q + "raw socket: " + std::strerror(errno));
    }
    for (int fd : {im.raw4, im.raw6}) {
      if (fd < 0) continue;  // no IPv6 here: IPv6 copies are counted as reinject errors
      setsockopt(fd, SOL_SOCKET, SO_MARK, &settings.bypass_mark, sizeof(settings.bypass_mark));
      setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSocketBufferBytes, sizeof(kSocketBufferBytes));
    }
  }
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
