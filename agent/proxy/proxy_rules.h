#pragma once
// Pure parts of the dependency fault: validation, the nft batch that redirects matching TCP
// connections to the proxy, per-connection toxic selection, and HTTP/1.1 request framing.
// No kernel access, so it is unit-tested without root.
//
// Table layout for fault <id> (family inet, name faultline_<id>):
//   sets peers4/peers6 (cidrs + resolved hosts; absent when the fault names no peers) and
//   excl4/excl6 (exclusions); chain "output" (nat, hook output, priority -100) whose first rule
//   returns packets carrying the proxy's socket mark (its own upstream connections), then
//   exclusions, then `tcp dport {ports} [ip daddr @peers4] counter redirect to :<port>` per family.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent::proxy {

struct RedirectOptions {
  uint32_t socket_mark = 0;  // the proxy's upstream sockets carry it; non-zero
  uint16_t port = 0;         // the fault's listener on 127.0.0.1 (and [::1])
  bool ipv6 = false;         // also redirect IPv6 connections (a [::1] listener exists)
};

// The nft batch that (re)creates table `table` for `fault` (validated) with `resolved` peer
// addresses added to the peer sets. One transaction; a leftover table of that name is replaced.
std::string RedirectApplyBatch(const std::string& table, const v1::DependencyFault& fault,
                               const RedirectOptions& options,
                               const std::vector<std::string>& resolved);

// The nft batch that replaces the peer sets' contents with cidrs + `resolved` (atomic). Empty
// when the fault names no peers.
std::string RedirectPeerUpdateBatch(const std::string& table, const v1::DependencyFault& fault,
                                    const std::vector<std::string>& resolved);

// The toxics one connection got, per direction, in the order they were listed.
struct ToxicPlan {
  std::vector<v1::DependencyFault::Toxic> upstream;
  std::vector<v1::DependencyFault::Toxic> downstream;
  bool empty() const { return upstream.empty() && downstream.empty(); }
};

// Draws, for each toxic, whether this connection gets it (probability `toxicity`, unset = 1).
// `uniform` returns values in [0, 1).
ToxicPlan PlanToxics(const v1::DependencyFault& fault, const std::function<double()>& uniform);

// "latency", "reset_peer", ... for a toxic's kind.
std::string ToxicKindName(const v1::DependencyFault::Toxic& toxic);

// The response sent for an aborted request: status line with the standard reason phrase,
// Content-Type (application/json when the body looks like JSON, else text/plain), Content-Length,
// Connection: close, then the body.
std::string AbortResponse(uint32_t status, const std::string& body);

// Frames HTTP/1.1 requests in the client→dependency byte stream and decides each one's fault.
// Feed it bytes as they arrive; it returns what to forward (with the delay to add) and whether a
// request was aborted. Header blocks are parsed with http-parser. A request whose framing it
// cannot follow (chunked body, Upgrade/CONNECT, a header block over 64 KiB, a parse error) ends
// the inspection: that request and everything after it pass unchanged.
class HttpRequestGate {
 public:
  struct Segment {
    std::string bytes;
    std::chrono::microseconds delay{0};
  };
  struct Output {
    std::vector<Segment> forward;  // in order
    bool abort = false;            // a request was aborted: send `response`, then close
    std::string response;
  };
  struct Counters {
    uint64_t requests_seen = 0;     // complete header blocks
    uint64_t requests_matched = 0;  // method and path prefix match
    uint64_t requests_aborted = 0;
    uint64_t requests_delayed = 0;
    uint64_t uninspected = 0;  // inspection ended (see above)
  };

  // `uniform` returns values in [0, 1). Precondition: http was validated.
  HttpRequestGate(v1::DependencyFault::Http http, std::function<double()> uniform);

  Output Feed(std::string_view data);
  const Counters& counters() const { return counters_; }
  // Bytes held while waiting for the end of a header block.
  size_t held() const { return pending_.size(); }

 private:
  enum class State { kHeaders, kBody, kPassThrough };
  void Decide(Output* out, size_t header_end);

  const v1::DependencyFault::Http http_;
  std::function<double()> uniform_;
  State state_ = State::kHeaders;
  std::string pending_;     // bytes of a header block not yet complete
  uint64_t body_left_ = 0;  // kBody: bytes of the current body still to come
  std::chrono::microseconds body_delay_{0};
  Counters counters_;
};

}  // namespace faultline::agent::proxy
