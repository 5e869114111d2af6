#include "common/grpc_status.h"

#include <gtest/gtest.h>

namespace faultline {
namespace {

TEST(GrpcStatusTest, OkMapsToOkBothWays) {
  EXPECT_TRUE(ToGrpcStatus(Status::Ok()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, "GetInfo on agent a").ok());
}

TEST(GrpcStatusTest, EveryCodeKeepsItsNumberAndMessageBothWays) {
  for (int code = 1; code <= 16; ++code) {
    Status ours(static_cast<StatusCode>(code), "why");
    grpc::Status theirs = ToGrpcStatus(ours);
    EXPECT_EQ(static_cast<int>(theirs.error_code()), code);
    EXPECT_EQ(theirs.error_message(), "why");
    Status back = FromGrpcStatus(theirs);
    EXPECT_EQ(back.code(), ours.code());
    EXPECT_EQ(back.message(), "why");
  }
}

TEST(GrpcStatusTest, ContextPrefixesTheMessage) {
  Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"),
                            "controller 10.0.0.1:7070");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "controller 10.0.0.1:7070: connection refused");
}

TEST(GrpcStatusTest, ACodeOutsideTheEnumFromAPeerIsUnknown) {
  Status s = FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(99), "odd"));
  EXPECT_EQ(s.code(), StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "odd");
}

}  // namespace
}  // namespace faultline
