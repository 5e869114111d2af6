#include "common/grpc_status.h"

#include <string>

namespace faultline {

// The codes are defined to be the same numbers; a drift would break every conversion silently.
static_assert(static_cast<int>(StatusCode::kOk) == grpc::StatusCode::OK);
static_assert(static_cast<int>(StatusCode::kCancelled) == grpc::StatusCode::CANCELLED);
static_assert(static_cast<int>(StatusCode::kInvalidArgument) == grpc::StatusCode::INVALID_ARGUMENT);
static_assert(static_cast<int>(StatusCode::kDeadlineExceeded) ==
              grpc::StatusCode::DEADLINE_EXCEEDED);
static_assert(static_cast<int>(StatusCode::kPermissionDenied) ==
              grpc::StatusCode::PERMISSION_DENIED);
static_assert(static_cast<int>(StatusCode::kResourceExhausted) ==
              grpc::StatusCode::RESOURCE_EXHAUSTED);
static_assert(static_cast<int>(StatusCode::kFailedPrecondition) ==
              grpc::StatusCode::FAILED_PRECONDITION);
static_assert(static_cast<int>(StatusCode::kInternal) == grpc::StatusCode::INTERNAL);
static_assert(static_cast<int>(StatusCode::kUnavailable) == grpc::StatusCode::UNAVAILABLE);
static_assert(static_cast<int>(StatusCode::kUnauthenticated) == grpc::StatusCode::UNAUTHENTICATED);

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

Status FromGrpcStatus(const grpc::Status& status, std::string_view context) {
  if (status.ok()) return Status::Ok();
  int code = static_cast<int>(status.error_code());
  // A peer may send any number; outside our enum it is UNKNOWN, as gRPC itself treats it.
  StatusCode ours = code > 0 && code <= static_cast<int>(StatusCode::kUnauthenticated)
                        ? static_cast<StatusCode>(code)
                        : StatusCode::kUnknown;
  std::string message = context.empty() ? status.error_message()
                                        : std::string(context) + ": " + status.error_message();
  return Status(ours, std::move(message));
}

}  // namespace faultline
