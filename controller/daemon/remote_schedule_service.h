#pragma once
// A schedule::ScheduleService over the Controller gRPC service: `faultline schedule ...
// --controller ADDR` works as with --store URL, and the controller validates and stores.

#include <chrono>
#include <memory>
#include <string>

#include "controller/schedule/schedule_service.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::daemon {

// `stub` talks to the controller at `address` (for messages). Each call has `deadline`. gRPC
// errors come back as the Status of the same code, message prefixed with the address.
std::unique_ptr<schedule::ScheduleService> MakeRemoteScheduleService(
    std::shared_ptr<v1::Controller::StubInterface> stub, std::string address,
    std::chrono::milliseconds deadline = std::chrono::seconds(10));

}  // namespace faultline::daemon
