// Scale benchmark of faultline-controller (issue 16): many simulated agents attached over mTLS,
// and the console's emergency stop measured from its HTTPS request to the last agent's ack.
//
// What is real: the faultline-controller binary (mTLS on 127.0.0.1, a SQLite store, the console
// over HTTPS, /metrics), `faultline certs init` and `faultline token create`, the console's
// login and its POST /api/halt (session cookie + the X-Faultline-Console CSRF header, as the
// page sends them), and every agent's mTLS connection with a certificate of its own
// (faultline:role:agent + faultline:agent:<id>, issued from the bench's CA): the controller
// registers each under the id its certificate carries, exactly as for a real agent.
// What is simulated: the agents. A few `scale_bench sim` processes each hold many Attach
// streams (gRPC callback API, one channel and TCP connection per agent: the controller takes an
// agent's identity from its connection's certificate, so agents cannot share a connection).
// They say Hello, heartbeat, and answer every command on the stream (apply, renew, revert,
// revert-all, list, get-info) from an in-memory fault table, without touching the kernel. Each
// holds one active fault per trial ("armed" by the driver); a revert-all reverts it and the
// ack's send instant is recorded on CLOCK_MONOTONIC, the driver's clock.
//
// Measured per agent count N (a fresh controller each):
//   attach: from the first agent's connect to the controller's /metrics reporting N live agents;
//   controller memory: VmRSS and VmHWM (/proc/PID/status) once N are attached, and after the
//   stop trials;
//   stop: per trial, the instant the POST /api/halt leaves the driver → the last of the N
//   agents' revert acks (and → the HTTP answer, which the console sends once the controller
//   received every ack). Median and p95 over the trials; each trial is checked: N acks, and the
//   console's answer counts N faults reverted.
// Figures are printed (and written as JSON with --json); with --smoke (200 agents, 2 trials)
// nothing is timed against a goal, but every agent must attach and ack, or the exit code is 1.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/proc_stats.h"
#include "bench/spawn.h"
#include "common/certificates.h"
#include "common/process.h"
#include "faultline/v1/controller.grpc.pb.h"

extern char** environ;

namespace {

using namespace faultline;
using bench::LoadAverage;
using bench::Percentile;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ============================================================================================
// The simulated agents (`scale_bench sim`): many Attach streams in one process.

std::mutex g_out_mu;  // stdout lines to the driver
void Say(const std::string& line) {
  std::lock_guard lock(g_out_mu);
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// Streams between dial and Welcome (or their end) in this process: the sims keep at most
// --max-dialing of them, as thousands of simultaneous TLS handshakes on two shared cores time
// out and turn into a redial storm.
std::atomic<int> g_dialing{0};

// Revert-all acks of the current trial, shared by every agent of the process.
struct AckBook {
  std::mutex mu;
  std::condition_variable cv;
  std::string trial;  // the armed fault id
  size_t acks = 0;
  int64_t first_ns = 0, last_ns = 0;
  void Record(const std::string& fault_id, int64_t at) {
    std::lock_guard lock(mu);
    if (fault_id != trial) return;
    ++acks;
    if (first_ns == 0 || at < first_ns) first_ns = at;
    last_ns = std::max(last_ns, at);
    cv.notify_all();
  }
};

// One simulated agent: its channel (one TCP+TLS connection, its own certificate), its fault
// table, and the current Attach stream. Like the real agent's ControllerLink, a stream that ends
// is dialled again after a jittered backoff (200 ms doubling to 5 s).
class SimAgent {
 public:
  SimAgent(std::string id, const std::string& address,
           std::shared_ptr<grpc::ChannelCredentials> creds, AckBook* book)
      : id_(std::move(id)), book_(book), rng_(std::hash<std::string>()(id_)) {
    grpc::ChannelArguments args;
    // One connection per agent (its certificate is its identity), never a shared subchannel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // As the real agent's ControllerLink dials.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    stub_ = v1::Controller::NewStub(grpc::CreateCustomChannel(address, creds, args));
  }

  // Starts a stream (the first, or a redial). From the driver's or the maintenance thread.
  void Dial();
  // Called by the maintenance thread: redials when a backoff is over.
  bool MaybeRedial(int64_t now) {
    int64_t at = redial_at_.load();
    if (at > 0 && now >= at && redial_at_.compare_exchange_strong(at, 0)) {
      Dial();
      return true;
    }
    return false;
  }
  void Cancel();
  void Heartbeat();
  bool attached() const { return attached_.load(); }
  int drops() const { return drops_.load(); }
  std::string last_error() {
    std::lock_guard lock(mu_);
    return last_error_;
  }

  // A new trial: this agent holds one active fault `fault_id` (replacing any other).
  void Arm(const std::string& fault_id) {
    std::lock_guard lock(mu_);
    fault_ = fault_id;
  }

 private:
  class Stream;
  friend class Stream;

  static v1::FaultStatus MakeFault(const std::string& fault_id, v1::FaultState state) {
    v1::FaultStatus f;
    f.set_run_id("scalebench");
    f.set_fault_id(fault_id);
    f.set_state(state);
    f.mutable_spec()->mutable_dns()->add_domains("db.scale.test");
    if (state == v1::REVERTED) f.set_revert_reason("revert-all");
    return f;
  }
  v1::AgentMessage Hello() {
    v1::AgentMessage hello;
    v1::AgentInfo* info = hello.mutable_hello()->mutable_info();
    info->set_agent_id(id_);
    (*info->mutable_labels())["bench"] = "scale";
    (*info->mutable_labels())["simulated"] = "true";
    info->set_version("scale-bench-sim");
    info->add_capabilities("dns");
    info->set_max_active_faults(64);
    info->set_max_lease_ttl_ms(3600000);
    std::lock_guard lock(mu_);
    info->set_active_faults(fault_.empty() ? 0 : 1);
    info->set_monotonic_ns(MonoNs());
    return hello;
  }
  // The agent's side of each command (controller.proto), from the in-memory fault table;
  // `reverted` gets the fault a revert-all reverted.
  v1::AgentMessage Answer(const v1::ControllerCommand& c, std::string* reverted) {
    v1::AgentMessage m;
    v1::CommandResult* r = m.mutable_result();
    r->set_request_id(c.request_id());
    std::lock_guard lock(mu_);
    switch (c.kind_case()) {
      case v1::ControllerCommand::kApply:
        fault_ = c.apply().fault_id();
        *r->mutable_fault() = MakeFault(fault_, v1::ACTIVE);
        break;
      case v1::ControllerCommand::kRenew:
        *r->mutable_fault() = MakeFault(c.renew().fault_id(), v1::ACTIVE);
        break;
      case v1::ControllerCommand::kRevert:
        if (fault_ == c.revert().fault_id()) fault_.clear();
        *r->mutable_fault() = MakeFault(c.revert().fault_id(), v1::REVERTED);
        break;
      case v1::ControllerCommand::kRevertAll:
        r->mutable_revert_all();
        if (!fault_.empty()) {
          *r->mutable_revert_all()->add_reverted() = MakeFault(fault_, v1::REVERTED);
          reverted->swap(fault_);
        }
        break;
      case v1::ControllerCommand::kList:
        if (!fault_.empty()) *r->mutable_list()->add_faults() = MakeFault(fault_, v1::ACTIVE);
        break;
      case v1::ControllerCommand::kGetInfo:
        r->mutable_info()->set_agent_id(id_);
        r->mutable_info()->set_active_faults(fault_.empty() ? 0 : 1);
        r->mutable_info()->set_monotonic_ns(MonoNs());
        break;
      default:
        r->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        r->set_message("unknown command");
    }
    return m;
  }
  void OnStreamDone(const grpc::Status& s, bool was_attached);

  const std::string id_;
  AckBook* const book_;
  std::unique_ptr<v1::Controller::Stub> stub_;
  std::atomic<bool> attached_{false};
  std::atomic<int64_t> redial_at_{0};  // CLOCK_MONOTONIC ns; 0: none due
  std::atomic<int> drops_{0};
  std::mutex mu_;
  std::mt19937 rng_;                // guarded by mu_
  int64_t backoff_ns_ = 200000000;  // guarded by mu_
  std::string fault_;               // guarded by mu_; the active fault, if any
  std::string last_error_;          // guarded by mu_
  std::shared_ptr<Stream> stream_;  // guarded by mu_; the current one
};

class SimAgent::Stream final
    : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  explicit Stream(SimAgent* agent) : agent_(agent) {}
  void Start() {
    agent_->stub_->async()->Attach(&ctx_, this);
    Enqueue(agent_->Hello());
    StartRead(&in_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  bool Idle() {
    std::lock_guard lock(mu_);
    return !writing_ && !done_;
  }
  void Enqueue(v1::AgentMessage m) {
    std::lock_guard lock(mu_);
    if (done_) return;
    out_.push_back(std::move(m));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (in_.has_welcome()) {
      attached_ = true;
      agent_->attached_ = true;
      --g_dialing;
    } else if (in_.has_command()) {
      std::string reverted;
      v1::AgentMessage answer = agent_->Answer(in_.command(), &reverted);
      // The ack's instant: the answer is handed to the stream now.
      if (!reverted.empty()) agent_->book_->Record(reverted, MonoNs());
      Enqueue(std::move(answer));
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    out_.pop_front();
    if (ok && !out_.empty()) {
      StartWrite(&out_.front());
    } else {
      writing_ = false;
    }
  }
  void OnDone(const grpc::Status& s) override {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    if (!attached_) --g_dialing;
    agent_->OnStreamDone(s, attached_);
  }

 private:
  SimAgent* const agent_;
  grpc::ClientContext ctx_;
  v1::ControllerMessage in_;
  bool attached_ = false;  // read path only
  std::mutex mu_;
  std::deque<v1::AgentMessage> out_;  // guarded by mu_; front is being written
  bool writing_ = false;              // guarded by mu_
  bool done_ = false;                 // guarded by mu_
};

void SimAgent::Dial() {
  ++g_dialing;
  auto s = std::make_shared<Stream>(this);
  {
    std::lock_guard lock(mu_);
    stream_ = s;  // the previous one (if any) has had its OnDone
  }
  s->Start();
}

void SimAgent::Cancel() {
  redial_at_ = -1;  // never again
  std::shared_ptr<Stream> s;
  {
    std::lock_guard lock(mu_);
    s = stream_;
  }
  if (s) s->Cancel();
}

void SimAgent::Heartbeat() {
  if (!attached_) return;
  std::shared_ptr<Stream> s;
  v1::AgentMessage beat;
  {
    std::lock_guard lock(mu_);
    s = stream_;
    beat.mutable_heartbeat()->set_active_faults(fault_.empty() ? 0 : 1);
  }
  // Only when nothing is queued: an answer on its way tells the controller as much.
  if (s && s->Idle()) s->Enqueue(std::move(beat));
}

void SimAgent::OnStreamDone(const grpc::Status& s, bool was_attached) {
  attached_ = false;
  ++drops_;
  std::lock_guard lock(mu_);
  last_error_ = s.error_message();
  if (redial_at_.load() < 0) return;  // cancelled for good
  // A stream that was welcomed was healthy: the backoff starts over.
  if (was_attached) backoff_ns_ = 200000000;
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  redial_at_ = MonoNs() + static_cast<int64_t>(backoff_ns_ * jitter(rng_));
  backoff_ns_ = std::min<int64_t>(backoff_ns_ * 2, 5000000000);
}

int RunSim(int first, int count, const std::string& address, const std::string& cert_dir,
           double heartbeat_s, int max_dialing) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  CertificateAndKey ca{ReadFile(cert_dir + "/ca.pem"), ReadFile(cert_dir + "/ca-key.pem")};
  AckBook book;
  std::vector<std::unique_ptr<SimAgent>> agents;
  agents.reserve(count);
  // Every agent gets a certificate of its own, like agent-<id>.pem from `faultline certs init
  // --agent ID` (role agent, the agent id URI, server and client auth).
  for (int i = first; i < first + count; ++i) {
    std::string id = "sim-" + std::to_string(i);
    CertificateRequest req(id, Role::kAgent);
    req.agent_id = id;
    req.server_auth = true;
    req.ip_sans = {"127.0.0.1"};
    auto issued = IssueCertificate(ca, req);
    if (!issued.ok()) {
      std::fprintf(stderr, "sim: certificate for %s: %s\n", id.c_str(),
                   issued.status().message().c_str());
      return 1;
    }
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ca.cert_pem;
    o.pem_private_key = issued->key_pem;
    o.pem_cert_chain = issued->cert_pem;
    agents.push_back(std::make_unique<SimAgent>(id, address, grpc::SslCredentials(o), &book));
  }
  Say("ready " + std::to_string(count));

  std::atomic<bool> stop{false};
  std::thread heartbeats;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string verb, arg;
    words >> verb >> arg;
    if (verb == "go") {
      int64_t t = MonoNs();
      size_t first_dials = 0;
      for (; first_dials < agents.size() && g_dialing < max_dialing; ++first_dials) {
        agents[first_dials]->Dial();
      }
      Say("started " + std::to_string(t));
      // Heartbeats spread over the interval in 20 ms slices, as a fleet's would be.
      heartbeats = std::thread([&agents, &stop, heartbeat_s, first_dials, max_dialing]() mutable {
        const int slices = std::max(1, static_cast<int>(heartbeat_s / 0.02));
        const auto slice = std::chrono::duration<double>(heartbeat_s / slices);
        size_t next = 0;
        auto at = std::chrono::steady_clock::now();
        while (!stop) {
          at += std::chrono::duration_cast<std::chrono::steady_clock::duration>(slice);
          std::this_thread::sleep_until(at);
          size_t n = (agents.size() + slices - 1) / slices;
          for (size_t k = 0; k < n && !agents.empty(); ++k, ++next) {
            agents[next % agents.size()]->Heartbeat();
          }
          const int64_t now = MonoNs();
          for (auto& a : agents) {
            if (g_dialing >= max_dialing) break;
            a->MaybeRedial(now);
          }
          while (first_dials < agents.size() && g_dialing < max_dialing) {
            agents[first_dials++]->Dial();
          }
        }
      });
    } else if (verb == "arm") {
      {
        std::lock_guard lock(book.mu);
        book.trial = arg;
        book.acks = 0;
        book.first_ns = book.last_ns = 0;
      }
      size_t attached = 0;
      for (auto& a : agents) {
        a->Arm(arg);
        attached += a->attached() ? 1 : 0;
      }
      Say("armed " + std::to_string(attached));
    } else if (verb == "report") {
      // Every attached agent's ack, or what came within 10 s.
      size_t attached = 0;
      for (auto& a : agents) attached += a->attached() ? 1 : 0;
      std::unique_lock lock(book.mu);
      book.cv.wait_for(lock, 10s, [&] { return book.acks >= attached; });
      Say("acks " + std::to_string(book.acks) + " " + std::to_string(book.first_ns) + " " +
          std::to_string(book.last_ns) + " " + std::to_string(attached));
    } else if (verb == "status") {
      size_t attached = 0, drops = 0;
      std::map<std::string, int> why;
      for (auto& a : agents) {
        attached += a->attached() ? 1 : 0;
        drops += a->drops();
        if (a->drops() > 0) ++why[a->last_error()];
      }
      std::string reasons;
      for (auto& [m, n] : why) reasons += " [" + std::to_string(n) + "x " + m + "]";
      Say("status " + std::to_string(attached) + " " + std::to_string(drops) + reasons);
    } else if (verb == "quit") {
      break;
    }
  }
  stop = true;
  if (heartbeats.joinable()) heartbeats.join();
  for (auto& a : agents) a->Cancel();
  // Streams end asynchronously; give them a moment, then leave without tearing gRPC down.
  auto give_up = std::chrono::steady_clock::now() + 5s;
  for (auto& a : agents) {
    while (a->attached() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
  }
  std::fflush(stdout);
  std::_Exit(0);
}

// ============================================================================================
// The driver.

struct Child {
  pid_t pid = -1;
  FILE* in = nullptr;   // its stdin
  FILE* out = nullptr;  // its stdout
};

std::mutex g_children_mu;
std::vector<pid_t> g_children;

void KillChildren() {
  std::lock_guard lock(g_children_mu);
  for (pid_t p : g_children) kill(p, SIGTERM);
  for (pid_t p : g_children) waitpid(p, nullptr, 0);
  g_children.clear();
}

// A tied child (bench/spawn.h) with optional pipes for stdin/stdout; stderr (and stdout without a
// pipe) to `log`. Recorded for the cleanup on exit.
Child Spawn(const std::vector<std::string>& argv, const std::string& log, bool pipes) {
  auto spawned = faultline::bench::SpawnTied(argv, {log, pipes, 0});
  if (spawned.pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  {
    std::lock_guard lock(g_children_mu);
    g_children.push_back(spawned.pid);
  }
  return Child{spawned.pid, spawned.in, spawned.out};
}

// Runs a program to completion and returns its stdout (exit code in *rc; 128 when it could not
// run or was killed).
std::string RunCapture(const std::vector<std::string>& argv, int* rc) {
  auto r = faultline::RunProcess(argv, std::chrono::seconds(60));
  *rc = r.ok() && r->exit_code >= 0 ? r->exit_code : 128;
  return r.ok() ? r->out : std::string();
}

void Tell(const Child& c, const std::string& line) {
  std::fputs((line + "\n").c_str(), c.in);
  std::fflush(c.in);
}

std::string Hear(const Child& c) {
  char buf[4096];
  if (!std::fgets(buf, sizeof buf, c.out)) return "";
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// faultline_controller_agents_live from the controller's /metrics, -1 when unreachable.
long LiveAgents(httplib::Client& metrics) {
  auto res = metrics.Get("/metrics");
  if (!res || res->status != 200) return -1;
  const std::string key = "\nfaultline_controller_agents_live ";
  size_t at = res->body.find(key);
  if (at == std::string::npos) return -1;
  return std::stol(res->body.substr(at + key.size()));
}

struct Options {
  std::string bin_dir;
  std::string self;
  std::string work = "/dev/shm/scale-bench";
  int port = 15890;
  int console_port = 15891;
  int metrics_port = 15892;
  int procs = 4;
  int trials = 12;
  double heartbeat_s = 1;
  double attach_deadline_s = 120;
  int max_dialing = 64;  // per sim process
  int max_agents = 0;    // the controller's --max-agents; 0: N + 100
  bool viewer = true;
  bool smoke = false;
};

struct Figures {
  int agents = 0;
  bool all_attached = false;
  double attach_s = 0;
  double attached_seen_s = 0;  // go → the sims all report attached (secondary)
  long rss_attached_kib = 0, hwm_attached_kib = 0, rss_end_kib = 0, hwm_end_kib = 0;
  std::vector<double> stop_ack_ms, stop_http_ms;
  int bad_trials = 0;
  std::vector<std::string> problems;
  std::string status_attached, status_end;  // the sims' own view: attached, stream ends, why
  double controller_cpu_attach_s = 0;       // the controller's CPU time until all attached
};

void Problem(Figures& f, const std::string& what) {
  std::fprintf(stderr, "scale_bench: %s\n", what.c_str());
  f.problems.push_back(what);
}

Figures RunOne(const Options& o, int n) {
  Figures fig;
  fig.agents = n;
  const std::string dir = o.work + "/n" + std::to_string(n);
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string certs = dir + "/certs";
  int rc = 0;
  RunCapture({o.bin_dir + "/faultline", "certs", "init", certs}, &rc);
  if (rc != 0) {
    Problem(fig, "faultline certs init failed");
    return fig;
  }
  const std::string address = "127.0.0.1:" + std::to_string(o.port);
  std::ostringstream hb;
  hb << static_cast<int>(o.heartbeat_s * 1000) << "ms";
  Child controller = Spawn({o.bin_dir + "/faultline-controller",
                            "--listen",
                            address,
                            "--tls-ca",
                            certs + "/ca.pem",
                            "--tls-cert",
                            certs + "/controller.pem",
                            "--tls-key",
                            certs + "/controller-key.pem",
                            "--store",
                            "sqlite://" + dir + "/history.db",
                            "--console-listen",
                            "127.0.0.1:" + std::to_string(o.console_port),
                            "--metrics-listen",
                            "127.0.0.1:" + std::to_string(o.metrics_port),
                            "--max-agents",
                            std::to_string(o.max_agents > 0 ? o.max_agents : n + 100),
                            "--heartbeat",
                            hb.str(),
                            "--ready-file",
                            dir + "/controller.ready",
                            "--log-level",
                            "warn"},
                           dir + "/controller.log", false);
  for (int i = 0; i < 200 && !fs::exists(dir + "/controller.ready"); ++i) {
    std::this_thread::sleep_for(50ms);  // polling a file the controller writes once
  }
  if (!fs::exists(dir + "/controller.ready")) {
    Problem(fig, "the controller did not start: see " + dir + "/controller.log");
    return fig;
  }

  // Sim processes: certificates first (not timed), then all dial at once on "go".
  std::vector<Child> sims;
  const int procs = std::max(1, std::min(o.procs, n));
  for (int p = 0; p < procs; ++p) {
    int first = n * p / procs, last = n * (p + 1) / procs;
    sims.push_back(Spawn(
        {o.self, "sim", "--first", std::to_string(first), "--count", std::to_string(last - first),
         "--controller", address, "--certs", certs, "--heartbeat", std::to_string(o.heartbeat_s),
         "--max-dialing", std::to_string(o.max_dialing)},
        dir + "/sim-" + std::to_string(p) + ".log", true));
  }
  for (auto& s : sims) {
    std::string r = Hear(s);
    if (r.rfind("ready", 0) != 0) {
      Problem(fig, "a sim process did not start (" + r + ")");
      return fig;
    }
  }
  httplib::Client metrics("127.0.0.1", o.metrics_port);
  metrics.set_keep_alive(true);
  for (auto& s : sims) Tell(s, "go");
  int64_t first_connect = 0;
  for (auto& s : sims) {
    std::string r = Hear(s);
    int64_t t = std::stoll(r.substr(r.find(' ') + 1));
    if (first_connect == 0 || t < first_connect) first_connect = t;
  }
  const int64_t give_up = first_connect + static_cast<int64_t>(o.attach_deadline_s * 1e9);
  long live = 0;
  while (MonoNs() < give_up) {
    live = LiveAgents(metrics);
    if (live >= n) break;
    std::this_thread::sleep_for(2ms);  // the poll's period: the figure's resolution
  }
  const int64_t attached_at = MonoNs();
  fig.attach_s = (attached_at - first_connect) / 1e9;
  fig.all_attached = live >= n;
  fig.rss_attached_kib = bench::ProcKib(controller.pid, "status", "VmRSS:");
  fig.hwm_attached_kib = bench::ProcKib(controller.pid, "status", "VmHWM:");
  fig.controller_cpu_attach_s = static_cast<double>(bench::CpuTicks(controller.pid)) /
                                static_cast<double>(sysconf(_SC_CLK_TCK));
  auto sims_status = [&sims] {
    std::string all;
    for (auto& s : sims) {
      Tell(s, "status");
      all += " " + Hear(s);
    }
    return all;
  };
  fig.status_attached = sims_status();
  if (!fig.all_attached) {
    Problem(fig, "only " + std::to_string(live) + " of " + std::to_string(n) +
                     " agents attached within the deadline;" + fig.status_attached);
  }

  // The console: an operator token, a session as the login page makes it.
  std::string token =
      RunCapture({o.bin_dir + "/faultline", "token", "create", "--role", "operator", "--name",
                  "scale-bench", "--controller", address, "--tls-dir", certs},
                 &rc);
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  httplib::SSLClient console("127.0.0.1", o.console_port);
  console.set_ca_cert_path((certs + "/ca.pem").c_str());
  console.enable_server_certificate_verification(true);
  console.set_keep_alive(true);
  console.set_read_timeout(60, 0);
  const httplib::Headers csrf = {{"X-Faultline-Console", "1"}};
  std::string cookie;
  if (rc == 0) {
    auto res =
        console.Post("/api/session", csrf, json{{"token", token}}.dump(), "application/json");
    if (res && res->status == 204) {
      std::string set = res->get_header_value("Set-Cookie");
      cookie = set.substr(0, set.find(';'));
    }
  }
  if (cookie.empty()) {
    Problem(fig, "no console session (token create exit " + std::to_string(rc) + ")");
  }
  httplib::Headers session = {{"Cookie", cookie}};
  httplib::Headers post_headers = {{"Cookie", cookie}, {"X-Faultline-Console", "1"}};

  // A viewer's event stream, as the open page holds one (the console then publishes the fleet,
  // with a fleet-wide fault list, every second).
  std::atomic<bool> stop_viewer{false};
  std::atomic<long> viewer_events{0};
  std::thread viewer;
  if (o.viewer && !cookie.empty()) {
    viewer = std::thread([&] {
      httplib::SSLClient events("127.0.0.1", o.console_port);
      events.set_ca_cert_path((certs + "/ca.pem").c_str());
      events.enable_server_certificate_verification(true);
      events.set_read_timeout(60, 0);
      events.Get("/api/events", session, [&](const char* data, size_t len) {
        for (size_t i = 0; i + 6 < len; ++i) {
          if (std::memcmp(data + i, "event:", 6) == 0) ++viewer_events;
        }
        return !stop_viewer.load();
      });
    });
  }

  for (int t = 0; t < o.trials && !cookie.empty() && fig.all_attached; ++t) {
    auto resumed = console.Post("/api/resume", post_headers, "{}", "application/json");
    if (!resumed || resumed->status != 200) {
      Problem(fig, "resume failed");
      break;
    }
    const std::string fault = "scale_" + std::to_string(t);
    size_t armed = 0;
    for (auto& s : sims) Tell(s, "arm " + fault);
    for (auto& s : sims) {
      std::string r = Hear(s);
      armed += std::stoul(r.substr(r.find(' ') + 1));
    }
    // The connection is open before the click (the page's is: it loaded over it).
    console.Get("/api/halt", session);
    const int64_t t0 = MonoNs();
    auto res = console.Post("/api/halt", post_headers,
                            json{{"reason", "scale bench trial " + std::to_string(t)}}.dump(),
                            "application/json");
    const int64_t t_http = MonoNs();
    size_t acks = 0, attached = 0;
    int64_t last = 0;
    for (auto& s : sims) Tell(s, "report");
    for (auto& s : sims) {
      std::istringstream w(Hear(s));
      std::string verb;
      size_t a = 0, at = 0;
      int64_t first_ns = 0, last_ns = 0;
      w >> verb >> a >> first_ns >> last_ns >> at;
      acks += a;
      attached += at;
      last = std::max(last, last_ns);
    }
    long reverted = -1;
    if (res && res->status == 200) {
      auto j = json::parse(res->body, nullptr, false);
      if (j.is_object() && j.contains("reverted")) reverted = j["reverted"].get<long>();
    }
    bool good = res && res->status == 200 && acks == static_cast<size_t>(n) &&
                armed == static_cast<size_t>(n) && reverted == n;
    if (!good) {
      ++fig.bad_trials;
      Problem(fig, "trial " + std::to_string(t) + ": http " +
                       (res ? std::to_string(res->status) : "error") + ", armed " +
                       std::to_string(armed) + ", acks " + std::to_string(acks) + " of " +
                       std::to_string(n) + ", console says reverted " + std::to_string(reverted));
      continue;
    }
    fig.stop_ack_ms.push_back((last - t0) / 1e6);
    fig.stop_http_ms.push_back((t_http - t0) / 1e6);
  }
  console.Post("/api/resume", post_headers, "{}", "application/json");
  fig.status_end = sims_status();
  fig.rss_end_kib = bench::ProcKib(controller.pid, "status", "VmRSS:");
  fig.hwm_end_kib = bench::ProcKib(controller.pid, "status", "VmHWM:");
  stop_viewer = true;
  if (viewer.joinable()) viewer.join();
  if (o.viewer && viewer_events.load() == 0 && !cookie.empty()) {
    Problem(fig, "the viewer's event stream carried no event");
  }

  for (auto& s : sims) {
    Tell(s, "quit");
    fclose(s.in);
  }
  for (auto& s : sims) {
    waitpid(s.pid, nullptr, 0);
    fclose(s.out);
  }
  kill(controller.pid, SIGTERM);
  waitpid(controller.pid, nullptr, 0);
  {
    std::lock_guard lock(g_children_mu);
    g_children.clear();
  }
  return fig;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"scale_bench: faultline-controller with many simulated mTLS agents (issue 16)"};
  app.require_subcommand(0, 1);
  Options o;
  std::vector<int> sizes = {1000, 10000};
  std::string json_out;
  app.add_option("--bin-dir", o.bin_dir, "where faultline and faultline-controller are");
  app.add_option("--agents", sizes, "agent counts to measure")->capture_default_str();
  app.add_option("--procs", o.procs, "simulator processes")->capture_default_str();
  app.add_option("--trials", o.trials, "stop trials per count")->capture_default_str();
  app.add_option("--heartbeat", o.heartbeat_s, "seconds (the controller's --heartbeat)")
      ->capture_default_str();
  app.add_option("--work", o.work, "scratch directory (certificates, store, logs)")
      ->capture_default_str();
  app.add_option("--port", o.port, "controller gRPC port")->capture_default_str();
  app.add_option("--console-port", o.console_port, "console HTTPS port")->capture_default_str();
  app.add_option("--metrics-port", o.metrics_port, "controller /metrics port")
      ->capture_default_str();
  app.add_option("--attach-deadline", o.attach_deadline_s, "seconds")->capture_default_str();
  app.add_option("--max-dialing", o.max_dialing,
                 "streams each sim process has between dial and Welcome at most")
      ->capture_default_str();
  app.add_option("--controller-max-agents", o.max_agents,
                 "the controller's --max-agents (default N + 100; less makes the smoke fail: its "
                 "negative control)");
  app.add_flag("!--no-viewer", o.viewer, "no open event stream during the trials");
  app.add_option("--json", json_out, "also write the figures here");
  app.add_flag("--smoke", o.smoke, "200 agents, 2 trials; exit 1 unless all attach and ack");

  auto* sim = app.add_subcommand("sim", "(internal) simulated agents, driven on stdin");
  int first = 0, count = 0;
  std::string controller, certs;
  double heartbeat = 1;
  sim->add_option("--first", first)->required();
  sim->add_option("--count", count)->required();
  sim->add_option("--controller", controller)->required();
  sim->add_option("--certs", certs)->required();
  sim->add_option("--heartbeat", heartbeat);
  int max_dialing = 64;
  sim->add_option("--max-dialing", max_dialing);
  CLI11_PARSE(app, argc, argv);

  // Every agent is a socket in the controller and in a sim process.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  if (sim->parsed()) return RunSim(first, count, controller, certs, heartbeat, max_dialing);

  if (o.bin_dir.empty()) {
    std::fprintf(stderr, "scale_bench: --bin-dir is required\n");
    return 2;
  }
  o.self = fs::canonical("/proc/self/exe").string();
  if (o.smoke) {
    sizes = {200};
    o.trials = 2;
    o.procs = 2;
    o.work += "-smoke";
    o.port += 3;  // beside a full run
    o.console_port += 3;
    o.metrics_port += 3;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::thread([stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    KillChildren();
    std::_Exit(128 + sig);
  }).detach();

  std::printf(
      "machine: %u cores, RLIMIT_NOFILE %lu, load %s; heartbeat %.1f s, %d sim processes "
      "(<= %d dials each), %d trials, viewer %s\n",
      std::thread::hardware_concurrency(), static_cast<unsigned long>(lim.rlim_cur),
      LoadAverage().c_str(), o.heartbeat_s, o.procs, o.max_dialing, o.trials,
      o.viewer ? "on" : "off");
  std::printf("%6s %9s | %-26s | %-26s | %-27s | %s\n", "agents", "attach_s",
              "stop→last ack ms med/p95", "stop→HTTP 200 ms med/p95", "ctl RSS/HWM MiB attached",
              "ctl RSS/HWM MiB end");
  json out = json::array();
  bool ok = true;
  for (int n : sizes) {
    Figures f = RunOne(o, n);
    std::printf(
        "%6d %9.3f | %10.1f / %-13.1f | %10.1f / %-13.1f | %10.1f / %-14.1f | %.1f / %.1f"
        "  (trials %zu ok, %d bad)\n",
        n, f.attach_s, Percentile(f.stop_ack_ms, 50), Percentile(f.stop_ack_ms, 95),
        Percentile(f.stop_http_ms, 50), Percentile(f.stop_http_ms, 95), f.rss_attached_kib / 1024.0,
        f.hwm_attached_kib / 1024.0, f.rss_end_kib / 1024.0, f.hwm_end_kib / 1024.0,
        f.stop_ack_ms.size(), f.bad_trials);
    std::printf(
        "       controller CPU until all attached %.2f s; sims (attached, stream ends, why):%s; "
        "at the end:%s\n",
        f.controller_cpu_attach_s, f.status_attached.c_str(), f.status_end.c_str());
    std::fflush(stdout);
    out.push_back(
        {{"agents", n},
         {"all_attached", f.all_attached},
         {"attach_s", f.attach_s},
         {"stop_to_last_ack_ms",
          {{"median", Percentile(f.stop_ack_ms, 50)},
           {"p95", Percentile(f.stop_ack_ms, 95)},
           {"all", f.stop_ack_ms}}},
         {"stop_to_http_ms",
          {{"median", Percentile(f.stop_http_ms, 50)}, {"p95", Percentile(f.stop_http_ms, 95)}}},
         {"controller_kib",
          {{"rss_attached", f.rss_attached_kib},
           {"hwm_attached", f.hwm_attached_kib},
           {"rss_end", f.rss_end_kib},
           {"hwm_end", f.hwm_end_kib}}},
         {"bad_trials", f.bad_trials},
         {"controller_cpu_until_attached_s", f.controller_cpu_attach_s},
         {"sims_after_attach", f.status_attached},
         {"sims_at_end", f.status_end},
         {"problems", f.problems}});
    ok = ok && f.all_attached && f.problems.empty() &&
         static_cast<int>(f.stop_ack_ms.size()) == o.trials;
  }
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
  if (o.smoke) {
    std::printf("%s\n", ok ? "smoke: every agent attached and acked every stop"
                           : "smoke: FAILED (see above)");
    return ok ? 0 : 1;
  }
  return 0;
}
