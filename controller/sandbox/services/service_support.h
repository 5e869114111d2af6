#pragma once
// Small pieces the sandbox's sample services share: parsing "host:port", the ready file, and
// stopping an httplib server on SIGTERM/SIGINT. Header-only on purpose: the services are two tiny
// programs, and this keeps them free of a library target of their own.

#include <httplib.h>
#include <signal.h>

#include <cstdio>
#include <optional>
#include <string>

#include "common/atomic_file.h"
#include "common/signals.h"

namespace faultline::sandbox {

struct ListenAddress {
  std::string host;
  int port = 0;
};

// Parses "HOST:PORT" (PORT 0..65535). Returns nullopt when malformed.
inline std::optional<ListenAddress> ParseListenAddress(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
  ListenAddress a;
  a.host = text.substr(0, colon);
  try {
    size_t used = 0;
    a.port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || a.port < 0 || a.port > 65535) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return a;
}

// Writes "<port>\n" to `path` with WriteFileAtomically, so whoever polls for the file never reads
// it half-written. Returns false on any I/O error.
inline bool WriteReadyFile(const std::string& path, int port) {
  if (path.empty()) return true;
  return WriteFileAtomically(path, std::to_string(port) + "\n", 0644).ok();
}

// Binds `server` to `address` (port 0 = any free port), writes the ready file with the bound port,
// prints `banner` (with the port appended as ":PORT"), then serves until a SIGTERM/SIGINT stops it.
// Returns the process exit code: 0 after a clean stop, 1 when it cannot listen or write the ready
// file (the message names `program`).
inline int ServeUntilSignalled(httplib::Server& server, const ListenAddress& address,
                               const std::string& ready_file, const char* program,
                               const std::string& banner) {
  // SIGTERM/SIGINT are blocked before the server starts its threads and stop it from a thread of
  // their own.
  const BlockedSignals stop_signals({SIGTERM, SIGINT});
  const SignalThread stopper(stop_signals, [&server](int) { server.stop(); });
  int port = address.port;
  if (port == 0) {
    port = server.bind_to_any_port(address.host);
  } else if (!server.bind_to_port(address.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "%s: cannot listen on %s:%d\n", program, address.host.c_str(),
                 address.port);
    return 1;
  }
  if (!WriteReadyFile(ready_file, port)) {
    std::fprintf(stderr, "%s: cannot write ready file %s\n", program, ready_file.c_str());
    return 1;
  }
  std::fprintf(stderr, "%s: %s:%d\n", program, banner.c_str(), port);
  server.listen_after_bind();
  return 0;
}

}  // namespace faultline::sandbox
