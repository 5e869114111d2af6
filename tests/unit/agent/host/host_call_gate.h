#pragma once
// A host call that blocks until the test opens its gate: stands for a netlink socket that never
// answers, a disk that hangs, or a /proc read of a process stuck in D state.

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "agent/host/host_call.h"

namespace faultline::agent::host::testing {

class HostCallGate {
 public:
  HostCallGate() : opened_(open_->get_future().share()) {}
  // Opens the gate (idempotent): every blocked call returns.
  ~HostCallGate() { Open(); }
  void Open() {
    if (!is_open_) open_->set_value();
    is_open_ = true;
  }
  // A call that returns only once the gate is open. It owns what it uses, so it may outlive the
  // gate and the test's stack frame.
  std::function<void()> BlockingCall() const {
    return [opened = opened_] { opened.wait(); };
  }
  // Takes every worker of `pool` with a blocked call (each caller gives up after 1 ms, as a
  // caller of a stuck host call does). True when each of them reported DEADLINE_EXCEEDED.
  bool HoldEveryWorker(HostCallPool& pool) const {
    bool all = true;
    for (size_t i = 0; i < pool.max_workers(); ++i) {
      Status s = pool.Call("stuck call " + std::to_string(i), std::chrono::milliseconds(1),
                           BlockingCall());
      all = all && s.code() == StatusCode::kDeadlineExceeded;
    }
    return all;
  }

 private:
  std::shared_ptr<std::promise<void>> open_ = std::make_shared<std::promise<void>>();
  std::shared_future<void> opened_;
  bool is_open_ = false;
};

}  // namespace faultline::agent::host::testing
