#include "controller/console/event_hub.h"

#include <algorithm>

namespace faultline::console {

std::string FormatServerSentEvent(const std::string& name, const std::string& data) {
  // `data` is one line of JSON (no raw newline in it); a newline would still be split safely.
  std::string out = "event: " + name + "\n";
  size_t start = 0;
  while (true) {
    size_t nl = data.find('\n', start);
    out += "data: " + data.substr(start, nl == std::string::npos ? nl : nl - start) + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out + "\n";
}

EventHub::EventHub(size_t max_streams, size_t max_queued)
    : max_streams_(max_streams), max_queued_(std::max<size_t>(1, max_queued)) {}

EventHub::~EventHub() { Close(); }

Result<std::shared_ptr<EventStream>> EventHub::Subscribe() {
  std::lock_guard lock(mu_);
  if (closed_) return Unavailable("the console is stopping");
  if (streams_.size() >= max_streams_) {
    return ResourceExhausted("too many event streams are open (" + std::to_string(max_streams_) +
                             "); close a console tab and retry");
  }
  auto stream = std::make_shared<EventStream>(this, max_queued_);
  streams_.push_back(stream);
  return stream;
}

void EventHub::Publish(const std::string& name, const std::string& data) {
  const std::string formatted = FormatServerSentEvent(name, data);
  std::lock_guard lock(mu_);
  for (auto it = streams_.begin(); it != streams_.end();) {
    if ((*it)->Offer(formatted)) {
      ++it;
    } else {
      // Full (a slow viewer) or already closed: the stream ends; its writer sees nullopt.
      ++dropped_;
      it = streams_.erase(it);
    }
  }
}

void EventHub::Close() {
  std::vector<std::shared_ptr<EventStream>> streams;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    streams.swap(streams_);
  }
  for (auto& s : streams) s->CloseStream();
}

size_t EventHub::open_streams() const {
  std::lock_guard lock(mu_);
  return streams_.size();
}

size_t EventHub::dropped_streams() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void EventHub::Unsubscribe(EventStream* stream) {
  std::lock_guard lock(mu_);
  std::erase_if(streams_, [stream](const auto& s) { return s.get() == stream; });
}

bool EventStream::Offer(const std::string& formatted) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    if (queue_.size() >= max_queued_) {
      closed_ = true;
      queue_.clear();
    } else {
      queue_.push_back(formatted);
    }
  }
  cv_.notify_all();
  std::lock_guard lock(mu_);
  return !closed_;
}

bool EventStream::PushFront(std::string formatted) {
  {
    std::lock_guard lock(mu_);
    if (closed_ || queue_.size() >= max_queued_) return false;
    queue_.push_front(std::move(formatted));
  }
  cv_.notify_all();
  return true;
}

std::optional<std::string> EventStream::Next(Duration timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !queue_.empty(); });
  if (closed_) return std::nullopt;
  if (queue_.empty()) return std::string();
  std::string out = std::move(queue_.front());
  queue_.pop_front();
  return out;
}

void EventStream::CloseStream() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    queue_.clear();
  }
  cv_.notify_all();
}

void EventStream::Leave() {
  CloseStream();
  hub_->Unsubscribe(this);
}

}  // namespace faultline::console
