#pragma once
// The one rule for a listener whose accept() fails: when the failure is a lack of fds or memory
// (EMFILE, ENFILE, ENOBUFS, ENOMEM) the connection stays in the backlog and the listener stays
// readable, so retrying at once would spin at 100% CPU. The loop stops watching the listener
// (epoll interest 0) and resumes it when one of its own connections closes (an fd is free again)
// or kAcceptBackoff later, whichever comes first. Used by the dependency proxy and the agent's
// accept gate.

#include <cerrno>
#include <chrono>

namespace faultline::agent::host {

inline constexpr std::chrono::milliseconds kAcceptBackoff{100};

// True for the accept() errors that mean "pause the listener" (see above). Pure.
inline bool AcceptLacksResources(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

}  // namespace faultline::agent::host
