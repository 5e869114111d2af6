#pragma once
// Conversions between the store's records (controller/store/run_store.h) and their
// controller.proto messages, shared by the controller (serving) and the CLI (reading), so a
// field added to one side is added in one place.

#include "controller/store/run_store.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::daemon {

v1::Schedule ScheduleToProto(const store::Schedule& s);
// INVALID_ARGUMENT naming the field for an unknown concurrency policy; the other fields are
// copied as given (schedule::ValidateSchedule checks them).
Result<store::Schedule> ScheduleFromProto(const v1::Schedule& p);

v1::ScheduleFiring FiringToProto(const store::Firing& f);
store::Firing FiringFromProto(const v1::ScheduleFiring& p);

v1::RunAnnotation AnnotationToProto(const store::Annotation& a);
store::Annotation AnnotationFromProto(const v1::RunAnnotation& p);

// A stored run as a RunSummary: verdict RUNNING/INTERRUPTED for runs without one; exit_code
// and report_text are left unset (the reader renders the stored report as it needs).
v1::RunSummary RunToProto(const store::RunRecord& r);
// Precondition: `p` came from RunToProto or a controller (state is a store state name or empty).
store::StoredRun StoredRunFromProto(const v1::RunSummary& p);

}  // namespace faultline::daemon
