#pragma once
// EventHub: the console's server-sent event fan-out (GET /api/events, docs/console-api.md). A
// publisher (a run's thread, a halt, the ticker) never blocks and never waits for a viewer: each
// stream has a bounded queue, and a stream whose queue is full when an event arrives is dropped
// (its connection closes; the page reconnects and gets a fresh `hello`). The number of open
// streams is bounded too.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/duration.h"
#include "common/status.h"

namespace faultline::console {

// One event as written on the wire: "event: <name>\ndata: <json>\n\n".
std::string FormatServerSentEvent(const std::string& name, const std::string& data);

class EventStream;

class EventHub {
 public:
  // `max_streams` open at once; `max_queued` events each may hold before it is dropped.
  EventHub(size_t max_streams, size_t max_queued);
  // Closes every stream.
  ~EventHub();

  // A new stream, which receives every event published after this call. RESOURCE_EXHAUSTED when
  // max_streams are open; UNAVAILABLE once closed. Thread-safe.
  Result<std::shared_ptr<EventStream>> Subscribe();
  // Queues `event` (formatted, FormatServerSentEvent) on every open stream; a full stream is
  // dropped instead. Never blocks on a stream. Thread-safe.
  void Publish(const std::string& name, const std::string& data);
  // Closes every stream and refuses new ones. Idempotent.
  void Close();
  size_t open_streams() const;
  // Streams dropped so far because their queue was full.
  size_t dropped_streams() const;

 private:
  friend class EventStream;
  void Unsubscribe(EventStream* stream);

  const size_t max_streams_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<EventStream>> streams_;  // guarded by mu_
  bool closed_ = false;                                // guarded by mu_
  size_t dropped_ = 0;                                 // guarded by mu_
};

// One viewer's stream. Next() is called by the one thread writing to that viewer.
class EventStream {
 public:
  EventStream(EventHub* hub, size_t max_queued) : hub_(hub), max_queued_(max_queued) {}
  // The next formatted event, waiting at most `timeout`: "" when none came in time (write a
  // keepalive), nullopt when the stream was dropped or the hub closed (end the response).
  std::optional<std::string> Next(Duration timeout);
  // Puts `formatted` first in this stream's queue, before anything published since Subscribe
  // (the `hello` a new viewer gets first). False when the stream is dropped or full.
  bool PushFront(std::string formatted);
  // Ends the stream and leaves the hub (which must still exist): Next returns nullopt. The
  // response writing this stream calls it when the viewer goes. Idempotent.
  void Leave();

 private:
  friend class EventHub;
  // False (and the stream is closed) when the queue is full.
  bool Offer(const std::string& formatted);
  void CloseStream();

  EventHub* hub_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // guarded by mu_
  bool closed_ = false;            // guarded by mu_
};

}  // namespace faultline::console
