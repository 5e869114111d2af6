// Agent-service client for tests/integration/wedge_test.sh and bench/halt_bench.sh (not product
// code). Talks plaintext gRPC to an agent started with --insecure on loopback.
//   halt_driver apply ADDR RUN_ID FAULT_ID SPEC_JSON
//       One ApplyFault (lease 60 s, deadline 60 s). Prints "OK" or "CODE: message" and how long
//       the call took; exit 0 when OK, 3 otherwise.
//   halt_driver halt ADDR
//       One RevertAll of every run. Prints "reverted N in X ms"; exit 0 when OK, 3 otherwise.
//   halt_driver bench ADDR JOURNAL_DIR TRIALS --fault SPEC_JSON... --stuck SPEC_JSON...
//       TRIALS times: applies every --fault, starts every --stuck apply on a thread of its own,
//       waits until the agent counts them all (GetInfo.active_faults), then measures from sending
//       RevertAll to its answer (the ack of the last revert), and from sending it to the last
//       stuck apply's error answer. Between trials it waits for JOURNAL_DIR to be empty (the stuck
//       applies' backends have returned). Prints each trial and median / p95 / max.
// SPEC_JSON is a faultline.v1.FaultSpec in proto JSON, e.g. {"network":{"blackhole":{}}}.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "faultline/v1/agent.grpc.pb.h"

namespace {

namespace v1 = faultline::v1;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

std::unique_ptr<v1::Agent::Stub> Connect(const std::string& address) {
  return v1::Agent::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

void WithDeadline(grpc::ClientContext* ctx, std::chrono::seconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

bool ParseSpec(const std::string& json, v1::FaultSpec* spec) {
  auto status = google::protobuf::util::JsonStringToMessage(json, spec);
  if (!status.ok()) {
    std::fprintf(stderr, "halt_driver: bad spec %s: %s\n", json.c_str(), status.ToString().c_str());
    return false;
  }
  return true;
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      return "ERROR";
  }
}

grpc::Status Apply(v1::Agent::Stub& stub, const std::string& run, const std::string& id,
                   const v1::FaultSpec& spec) {
  v1::ApplyFaultRequest request;
  request.set_run_id(run);
  request.set_fault_id(id);
  *request.mutable_spec() = spec;
  request.set_lease_ttl_ms(60000);
  v1::ApplyFaultResponse response;
  grpc::ClientContext ctx;
  WithDeadline(&ctx, std::chrono::seconds(60));
  return stub.ApplyFault(&ctx, request, &response);
}

// RevertAll of every run (deadline 30 s); `response` gets the reverted faults.
grpc::Status RevertAll(v1::Agent::Stub& stub, v1::RevertAllResponse* response) {
  grpc::ClientContext ctx;
  WithDeadline(&ctx, std::chrono::seconds(30));
  return stub.RevertAll(&ctx, v1::RevertAllRequest(), response);
}

int ActiveFaults(v1::Agent::Stub& stub) {
  grpc::ClientContext ctx;
  WithDeadline(&ctx, std::chrono::seconds(5));
  v1::AgentInfo info;
  if (!stub.GetInfo(&ctx, v1::GetInfoRequest(), &info).ok()) return -1;
  return static_cast<int>(info.active_faults());
}

bool EmptyDir(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::is_empty(dir, ec) || ec;
}

// Polls `ready` every millisecond for at most `timeout`.
template <typename F>
bool Await(std::chrono::seconds timeout, F ready) {
  const auto end = Clock::now() + timeout;
  while (!ready()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Nearest-rank percentile (p in (0, 1]); the median of an even count is the mean of the middle two.
double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (p == 0.5) return (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(std::max<size_t>(rank, 1), v.size()) - 1];
}

int Bench(int argc, char** argv) {
  if (argc < 5) return 2;
  const std::string address = argv[2];
  const std::string journal = argv[3];
  const int trials = std::atoi(argv[4]);
  std::vector<v1::FaultSpec> faults, stuck;
  for (int i = 5; i + 1 < argc; i += 2) {
    v1::FaultSpec spec;
    if (!ParseSpec(argv[i + 1], &spec)) return 2;
    (std::string(argv[i]) == "--stuck" ? stuck : faults).push_back(spec);
  }
  auto stub = Connect(address);
  std::vector<double> halt_ms, stuck_ms;
  for (int t = 0; t < trials; ++t) {
    if (!Await(std::chrono::seconds(30), [&] { return EmptyDir(journal); })) {
      std::fprintf(stderr, "trial %d: journal %s never emptied\n", t, journal.c_str());
      return 1;
    }
    const std::string run = "hb" + std::to_string(t);
    for (size_t i = 0; i < faults.size(); ++i) {
      grpc::Status s = Apply(*stub, run, run + "_f" + std::to_string(i), faults[i]);
      if (!s.ok()) {
        std::fprintf(stderr, "trial %d: apply of fault %zu: %s\n", t, i, s.error_message().c_str());
        return 1;
      }
    }
    std::vector<std::thread> threads;
    std::vector<grpc::Status> ended(stuck.size());
    std::vector<Clock::time_point> ended_at(stuck.size());
    for (size_t i = 0; i < stuck.size(); ++i) {
      threads.emplace_back([&, i] {
        ended[i] = Apply(*stub, run, run + "_s" + std::to_string(i), stuck[i]);
        ended_at[i] = Clock::now();
      });
    }
    const int want = static_cast<int>(faults.size() + stuck.size());
    if (!Await(std::chrono::seconds(10), [&] { return ActiveFaults(*stub) == want; })) {
      std::fprintf(stderr, "trial %d: the agent never counted %d faults\n", t, want);
      for (auto& th : threads) th.join();
      return 1;
    }
    v1::RevertAllResponse response;
    const auto sent = Clock::now();
    grpc::Status halted = RevertAll(*stub, &response);
    const auto acked = Clock::now();
    for (auto& th : threads) th.join();
    if (!halted.ok() || response.reverted_size() != want) {
      std::fprintf(stderr, "trial %d: RevertAll %s, %d reverted of %d\n", t,
                   halted.error_message().c_str(), response.reverted_size(), want);
      return 1;
    }
    Clock::time_point last = sent;
    for (size_t i = 0; i < stuck.size(); ++i) {
      if (ended[i].ok()) {
        std::fprintf(stderr, "trial %d: stuck apply %zu succeeded after the halt\n", t, i);
        return 1;
      }
      last = std::max(last, ended_at[i]);
    }
    halt_ms.push_back(MsSince(sent, acked));
    stuck_ms.push_back(MsSince(sent, last));
    std::printf(
        "trial %2d: halt -> last revert ack %.2f ms; -> last stuck apply's error %.2f ms "
        "(%s)\n",
        t, halt_ms.back(), stuck_ms.back(), stuck.empty() ? "-" : CodeName(ended[0].error_code()));
    std::fflush(stdout);
  }
  std::printf(
      "halt -> last revert ack over %d trials (%zu faults + %zu stuck applies each): median %.2f "
      "ms, p95 %.2f ms, max %.2f ms\n",
      trials, faults.size(), stuck.size(), Percentile(halt_ms, 0.5), Percentile(halt_ms, 0.95),
      Percentile(halt_ms, 1.0));
  std::printf("halt -> last stuck apply's error: median %.2f ms, p95 %.2f ms, max %.2f ms\n",
              Percentile(stuck_ms, 0.5), Percentile(stuck_ms, 0.95), Percentile(stuck_ms, 1.0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string verb = argc > 1 ? argv[1] : "";
  if (verb == "apply" && argc == 6) {
    v1::FaultSpec spec;
    if (!ParseSpec(argv[5], &spec)) return 2;
    auto stub = Connect(argv[2]);
    const auto start = Clock::now();
    grpc::Status s = Apply(*stub, argv[3], argv[4], spec);
    std::printf("%s%s%s (%.1f ms)\n", CodeName(s.error_code()), s.ok() ? "" : ": ",
                s.error_message().c_str(), MsSince(start, Clock::now()));
    return s.ok() ? 0 : 3;
  }
  if (verb == "halt" && argc == 3) {
    auto stub = Connect(argv[2]);
    v1::RevertAllResponse response;
    const auto start = Clock::now();
    grpc::Status s = RevertAll(*stub, &response);
    std::printf("%s%s%s: reverted %d in %.2f ms\n", CodeName(s.error_code()), s.ok() ? "" : ": ",
                s.error_message().c_str(), response.reverted_size(), MsSince(start, Clock::now()));
    return s.ok() ? 0 : 3;
  }
  if (verb == "bench") {
    int rc = Bench(argc, argv);
    if (rc != 2) return rc;
  }
  std::fprintf(stderr,
               "usage: %s apply ADDR RUN_ID FAULT_ID SPEC_JSON | halt ADDR | bench ADDR "
               "JOURNAL_DIR TRIALS (--fault SPEC_JSON | --stuck SPEC_JSON)...\n",
               argv[0]);
  return 2;
}
