#pragma once
// Status <-> grpc::Status, the one conversion. A separate library (faultline_grpc_status) so that
// faultline_common stays free of gRPC.

#include <grpcpp/support/status.h>

#include <string_view>

#include "common/status.h"

namespace faultline {

// The grpc::Status with the same code and message (grpc::Status::OK for an OK status).
// Pure; thread-safe.
grpc::Status ToGrpcStatus(const Status& status);

// The Status with the same code as `status`; its message is `context + ": " + error_message()`,
// or the error message alone when `context` is empty (say which call failed, on which peer).
// An OK grpc::Status gives Status::Ok(). Pure; thread-safe.
Status FromGrpcStatus(const grpc::Status& status, std::string_view context = {});

}  // namespace faultline
