#include "common/faultspec/fault_kinds.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

namespace faultline::faultspec {
namespace {

// The table and the proto agree: one line per FaultSpec oneof field, named as the field.
TEST(FaultKindsTest, OneLinePerFaultSpecKindNamedAsItsField) {
  const auto* oneof = v1::FaultSpec::descriptor()->FindOneofByName("kind");
  ASSERT_NE(oneof, nullptr);
  ASSERT_EQ(static_cast<size_t>(oneof->field_count()), FaultKinds().size());
  std::set<std::string> names;
  for (const FaultKind& k : FaultKinds()) {
    const auto* field = v1::FaultSpec::descriptor()->FindFieldByNumber(k.kind_case);
    ASSERT_NE(field, nullptr) << k.name;
    EXPECT_EQ(field->name(), k.name);
    EXPECT_FALSE(k.injected_evidence.empty()) << k.name;
    EXPECT_FALSE(k.description.empty()) << k.name;
    EXPECT_NE(k.validate, nullptr);
    EXPECT_TRUE(names.insert(std::string(k.name)).second) << "duplicate " << k.name;
    EXPECT_EQ(FindFaultKind(k.name), &k);
    EXPECT_EQ(FindFaultKind(k.kind_case), &k);
  }
  EXPECT_EQ(FindFaultKind("nope"), nullptr);
  EXPECT_EQ(FindFaultKind(v1::FaultSpec::KIND_NOT_SET), nullptr);
}

TEST(FaultKindsTest, AnEmptySpecIsRefusedNamingTheKinds) {
  Status s = ValidateFaultSpec(v1::FaultSpec());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  std::string names;
  for (const FaultKind& k : FaultKinds())
    names += (names.empty() ? "" : ", ") + std::string(k.name);
  EXPECT_EQ(s.message(), "a fault needs exactly one kind: " + names);
  EXPECT_EQ(names.rfind("dns, network, dependency, process", 0), 0u);
  EXPECT_EQ(FaultKindName(v1::FaultSpec()), "");
}

TEST(FaultKindsTest, EachKindValidatesItsOwnMessageWithPathsFromItsName) {
  for (const FaultKind& k : FaultKinds()) {
    v1::FaultSpec spec;
    // An empty message of the kind is invalid for every kind (a required field is missing).
    spec.GetReflection()->MutableMessage(
        &spec, v1::FaultSpec::descriptor()->FindFieldByNumber(k.kind_case));
    EXPECT_EQ(FaultKindName(spec), k.name);
    FieldProblems problems;
    ValidateFaultSpec(spec, {}, &problems);
    ASSERT_FALSE(problems.ok()) << k.name;
    for (const auto& p : problems.problems()) {
      EXPECT_EQ(p.field.substr(0, k.name.size()), k.name) << p.ToString();
    }
  }
}

TEST(FaultKindsTest, ProblemsAreBounded) {
  FieldProblems problems;
  for (size_t i = 0; i < FieldProblems::kMaxKept + 5; ++i) problems.Add("f", "m");
  EXPECT_EQ(problems.problems().size(), FieldProblems::kMaxKept);
  EXPECT_EQ(problems.dropped(), 5u);
  EXPECT_EQ(problems.ToStatus().message(), "f: m");
}

}  // namespace
}  // namespace faultline::faultspec
