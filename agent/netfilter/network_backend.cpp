#include "agent/netfilter/network_backend.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "agent/host/deadman_switch.h"
#include "agent/host/death_guard.h"
#include "agent/host/fault_tables.h"
#include "agent/host/host_addresses.h"
#include "agent/host/host_watcher.h"
#include "agent/host/nft_ruleset.h"
#include "agent/netfilter/netem_probe.h"
#include "agent/netfilter/network_rules.h"
#include "agent/nfqueue/delay_line.h"
#include "common/faultspec/fault_kinds.h"
#include "common/ids.h"
#include "common/process.h"

namespace faultline::agent::netfilter {
namespace {

using host::HostWatcher;
using host::IsValidNftIdentifier;
using host::kResolveTimeout;
using host::kTablePrefix;
using host::NftRuleset;
using host::NftTables;
using host::ResolveHostAddresses;
using host::ResolveHostAddressesWithin;

using namespace std::chrono_literals;

constexpr const char* kCapCheckTable = "faultline_capcheck_net";
constexpr uint32_t kFirstMarkBit = 20;
// Carried by the delay lines' reinjected copies (never queued again); below the queue bits.
constexpr uint32_t kBypassMark = 1u << 19;
constexpr uint16_t kMaxQueues = 8;
constexpr auto kIptablesTimeout = 10s;

std::string TableName(const std::string& fault_id) { return std::string(kTablePrefix) + fault_id; }

// True when `iptables -t raw -S` output shows no rule and no user chain and only ACCEPT
// policies: the table has no effect on any packet.
bool RawTableIsInert(const std::string& listing) {
  std::istringstream lines(listing);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.rfind("-P ", 0) == 0 && line.size() > 7 &&
        line.compare(line.size() - 7, 7, " ACCEPT") == 0) {
      continue;
    }
    return false;
  }
  return true;
}

// After our NFQUEUE rules were removed from a raw table that is now inert, deletes the table
// iptables-nft created for them, so `nft list ruleset` is as before the fault.
void DropInertRawTable(const std::string& prog, bool v6, NftTables& nft) {
  auto after = RunProcess({prog, "-w", "-t", "raw", "-S"}, 10s);
  if (after.ok() && after->exit_code == 0 && RawTableIsInert(after->out)) {
    (void)nft.DeleteTable(v6 ? "ip6" : "ip", "raw");
  }
}

// The xtables NFQUEUE rules of one latency fault (IPv4 and IPv6, each active direction), and the
// raw tables iptables-nft creates for them: removed again when this agent created them and no
// rule is left in them, so a revert leaves `nft list ruleset` as it found it.
class QueueRules {
 public:
  explicit QueueRules(NetworkBackendOptions o) : o_(std::move(o)) {}

  // Queues marked packets at OUTPUT to `egress_queue` and at PREROUTING to `ingress_queue`
  // (negative: that direction is not queued).
  Status Add(const std::string& comment, int egress_queue, int ingress_queue, uint32_t mark,
             NftTables& nft) {
    std::lock_guard lock(mu_);
    if (active_ == 0) {
      auto tables = nft.ListTables("raw");
      if (!tables.ok()) return tables.status();
      created_v4_ = created_v6_ = true;
      for (const auto& t : *tables) {
        if (t.name == "raw" && t.family == "ip") created_v4_ = false;
        if (t.name == "raw" && t.family == "ip6") created_v6_ = false;
      }
    }
    ++active_;
    std::vector<std::vector<std::string>> added;
    for (const std::string* prog : {&o_.iptables, &o_.ip6tables}) {
      for (bool eg : {true, false}) {
        int queue = eg ? egress_queue : ingress_queue;
        if (queue < 0) continue;
        std::vector<std::string> argv = {*prog};
        auto args = QueueRuleArgs("-A", eg, comment, mark, static_cast<uint16_t>(queue));
        argv.insert(argv.end(), args.begin(), args.end());
        Status s = RunChecked(argv, kIptablesTimeout);
        if (!s.ok()) {
          RemoveLocked(comment, nft);
          return Unavailable("network: cannot add the NFQUEUE rule: " + s.message());
        }
      }
    }
    return Status::Ok();
  }

  // `orphan`: the rule was added by an earlier agent process (journal recovery); its raw table
  // is then dropped when our rule was in it and it is left inert.
  Status Remove(const std::string& comment, NftTables& nft, bool orphan = false) {
    std::lock_guard lock(mu_);
    return RemoveLocked(comment, nft, orphan);
  }

 private:
  Status RemoveLocked(const std::string& comment, NftTables& nft, bool orphan = false) {
    Status first;
    bool any_left = false;
    for (const std::string* prog : {&o_.iptables, &o_.ip6tables}) {
      auto listing = RunProcess({*prog, "-w", "-t", "raw", "-S"}, kIptablesTimeout);
      if (!listing.ok() || listing->exit_code != 0) continue;  // no raw table: nothing of ours
      auto deletions = QueueRuleDeletions(listing->out, comment, true);
      for (auto& args : deletions) {
        args.insert(args.begin(), *prog);
        Status s = RunChecked(args, kIptablesTimeout);
        if (!s.ok() && first.ok()) first = s;
      }
      if (orphan && !deletions.empty()) DropInertRawTable(*prog, prog == &o_.ip6tables, nft);
      auto after = RunProcess({*prog, "-w", "-t", "raw", "-S"}, kIptablesTimeout);
      if (after.ok() && after->out.find("-A ") != std::string::npos) any_left = true;
    }
    if (!first.ok()) return first;
    if (active_ > 0) --active_;
    if (active_ == 0 && !any_left) {
      if (created_v4_) (void)nft.DeleteTable("ip", "raw");
      if (created_v6_) (void)nft.DeleteTable("ip6", "raw");
      created_v4_ = created_v6_ = false;
    }
    return Status::Ok();
  }

  const NetworkBackendOptions o_;
  std::mutex mu_;
  int active_ = 0;
  bool created_v4_ = false;
  bool created_v6_ = false;
};

std::shared_ptr<QueueRules>& SharedQueueRules(const NetworkBackendOptions& o) {
  static std::shared_ptr<QueueRules> rules = std::make_shared<QueueRules>(o);
  return rules;
}

class NetworkFaultHandle final : public FaultHandle {
 public:
  NetworkFaultHandle(std::string fault_id, v1::NetworkFault fault,
                     std::shared_ptr<host::FaultTables> tables, host::TableOwnership owned,
                     std::unique_ptr<HostWatcher> hosts)
      : fault_id_(std::move(fault_id)),
        table_(TableName(fault_id_)),
        fault_(std::move(fault)),
        tables_(std::move(tables)),
        owned_(std::move(owned)),
        nft_(tables_->nft()),
        hosts_(std::move(hosts)) {}

  ~NetworkFaultHandle() override { (void)Revert(); }

  // Delay line parts (queued faults), set by the backend after the table exists.
  void AttachDelayLines(std::vector<std::unique_ptr<nfqueue::DelayLine>> lines,
                        std::shared_ptr<QueueRules> rules, std::function<void()> release_queues) {
    lines_ = std::move(lines);
    queue_rules_ = std::move(rules);
    release_queue_ = std::move(release_queues);
  }

  // Re-resolves the fault's host names while it is active (no thread without hosts).
  void StartResolver() {
    hosts_->Start([this](const std::vector<std::string>& addresses) {
      return nft_->Run(PeerSetUpdateBatch(table_, fault_, addresses));
    });
  }

  Status Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return Status::Ok();
    hosts_->Stop();
    final_ = ReadEvidence(nullptr);
    // The queueing rules go first so nothing new is queued; then the table; then the line
    // releases what it holds.
    if (queue_rules_) {
      Status s = queue_rules_->Remove(TableName(fault_id_), *nft_);
      if (!s.ok()) return s;
    }
    Status s = tables_->Revert(owned_);
    if (!s.ok()) return s;
    if (!lines_.empty()) {
      for (auto& line : lines_) line->Stop();
      Evidence last = ReadEvidence(&final_);
      final_ = last;
      if (release_queue_) release_queue_();
    }
    reverted_ = true;
    return Status::Ok();
  }

  Evidence GetEvidence() const override {
    std::lock_guard lock(mu_);
    if (reverted_) return final_;
    return ReadEvidence(nullptr);
  }

 private:
  // The fault's evidence now; `before_delete` (the evidence read before the table was deleted)
  // supplies the nftables counters once the table is gone.
  Evidence ReadEvidence(const Evidence* before_delete) const {
    Evidence e;
    auto listing = nft_->RunWithOutput("list counters table inet " + table_);
    std::map<std::string, NftCounter> counters;
    if (listing.ok()) counters = ParseNftCounters(*listing);
    if (!lines_.empty()) {
      std::vector<nfqueue::DelayLineStats> stats;
      for (const auto& line : lines_) stats.push_back(line->Stats());
      NftCounter bypassed = counters["bypassed"];
      if (!listing.ok() && before_delete != nullptr) {
        auto get = [&](const char* k) {
          auto it = before_delete->find(k);
          return it == before_delete->end() ? uint64_t{0} : it->second;
        };
        bypassed = {get("packets_fail_open"), get("bytes_fail_open")};
      }
      e = QueuedFaultEvidence(stats, bypassed, fault_.has_latency());
      if (fault_.has_latency()) e["mechanism_netem"] = 0;
    } else if (listing.ok()) {
      const char* verb = fault_.has_reject() ? "rejected" : "dropped";
      e["packets_matched"] = counters["matched"].packets;
      e["bytes_matched"] = counters["matched"].bytes;
      e[std::string("packets_") + verb] = counters["faulted"].packets;
      e[std::string("bytes_") + verb] = counters["faulted"].bytes;
    } else if (before_delete != nullptr) {
      e = *before_delete;
    } else if (!final_.empty()) {
      e = final_;
    }
    hosts_->AddEvidence(&e);
    return e;
  }

  const std::string fault_id_;
  const std::string table_;
  const v1::NetworkFault fault_;
  std::shared_ptr<host::FaultTables> tables_;
  const host::TableOwnership owned_;
  std::shared_ptr<NftTables> nft_;
  std::vector<std::unique_ptr<nfqueue::DelayLine>> lines_;
  std::shared_ptr<QueueRules> queue_rules_;
  std::function<void()> release_queue_;

  mutable std::mutex mu_;
  bool reverted_ = false;  // guarded by mu_
  Evidence final_;         // guarded by mu_

  const std::unique_ptr<HostWatcher> hosts_;
};

// A latency fault running as netem root qdiscs (netem_qdisc.h).
class NetemFaultHandle final : public FaultHandle {
 public:
  NetemFaultHandle(ProcessRunner run, std::vector<QdiscRecord> records, std::string record_path,
                   std::unique_ptr<host::DeathGuard> guard)
      : run_(std::move(run)),
        records_(std::move(records)),
        record_path_(std::move(record_path)),
        guard_(std::move(guard)) {}
  ~NetemFaultHandle() override { (void)Revert(); }

  Status Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return Status::Ok();
    Status s = RestoreQdiscs(run_, records_);
    if (!s.ok()) return s;
    if (!record_path_.empty()) (void)::unlink(record_path_.c_str());
    if (guard_) guard_->Release();
    reverted_ = true;
    return Status::Ok();
  }

  Evidence GetEvidence() const override {
    return {{"mechanism_netem", 1}, {"netem_devices", records_.size()}};
  }

 private:
  const ProcessRunner run_;
  const std::vector<QdiscRecord> records_;
  const std::string record_path_;
  const std::unique_ptr<host::DeathGuard> guard_;  // undoes the qdiscs if the agent dies
  std::mutex mu_;
  bool reverted_ = false;  // guarded by mu_
};

}  // namespace

Result<std::vector<std::string>> SweepQueueRules(const NetworkBackendOptions& options) {
  NftRuleset nft;
  std::vector<std::string> deleted;
  Status first;
  for (const std::string* prog : {&options.iptables, &options.ip6tables}) {
    auto listing = RunProcess({*prog, "-w", "-t", "raw", "-S"}, kIptablesTimeout);
    if (!listing.ok() || listing->exit_code != 0) continue;
    bool removed_any = false;
    for (auto& args : QueueRuleDeletions(listing->out, std::string(kTablePrefix), false)) {
      std::string comment;
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == "--comment") comment = args[i + 1];
      }
      args.insert(args.begin(), *prog);
      Status s = RunChecked(args, kIptablesTimeout);
      if (s.ok()) {
        deleted.push_back(*prog + ":" + comment);
        removed_any = true;
      } else if (first.ok()) {
        first = s;
      }
    }
    if (removed_any) DropInertRawTable(*prog, prog == &options.ip6tables, nft);
  }
  if (!first.ok()) return first;
  return deleted;
}

NetworkBackend::NetworkBackend(NetworkBackendOptions options)
    : options_(std::move(options)),
      nft_(nullptr),
      control_port_(options_.control_port),
      queue_used_(std::min(options_.queue_count, kMaxQueues), false) {
  if (!options_.tables) {
    options_.tables = std::make_shared<host::FaultTables>(
        std::make_shared<NftRuleset>(), std::make_shared<host::DeadmanSwitch>(), "");
  }
  nft_ = options_.tables->nft();
}

NetworkBackend::~NetworkBackend() = default;

Status NetworkBackend::DetectCapability() {
  const std::string t = std::string("inet ") + kCapCheckTable;
  // The rules can never match: they need a mark nobody sets, and live for two syscalls.
  Status s = nft_->Run(
      "add table " + t + "\nadd chain " + t +
      " out { type filter hook output priority 0; policy accept; }\nadd rule " + t +
      " out meta mark 0xfffffffe numgen random mod 10000 < 1 limit rate over 1000 bytes/second "
      "drop\nadd rule " +
      t + " out meta mark 0xfffffffe meta l4proto tcp reject with tcp reset\nadd rule " + t +
      " out meta mark 0xfffffffe reject with icmpx type port-unreachable\n");
  Status cleanup = nft_->DeleteTable("inet", kCapCheckTable);
  if (!s.ok()) {
    return FailedPrecondition("network: nftables filter rules are not usable here (" + s.message() +
                              ")");
  }
  if (!cleanup.ok()) {
    return FailedPrecondition("network: cannot delete nftables table: " + cleanup.message());
  }
  // Latency: the iptables program must exist and a queue of our range must be bindable.
  std::string why;
  auto version = RunProcess({options_.iptables, "--version"}, kIptablesTimeout);
  if (!version.ok() || version->exit_code != 0) {
    why = "no usable " + options_.iptables + " for the NFQUEUE rule";
  } else if (version->out.find("nf_tables") == std::string::npos) {
    why = options_.iptables + " is not iptables-nft";
  } else if (queue_used_.empty()) {
    why = "no NFQUEUE numbers configured";
  } else {
    nfqueue::DelayLineSettings probe;
    probe.queue_num = options_.queue_first;
    auto line = nfqueue::DelayLine::Start(probe);
    if (!line.ok()) why = line.status().message();
  }
  {
    std::lock_guard lock(mu_);
    latency_unavailable_ = why;
  }
  NetemCapability netem = DetectNetem(options_.run);
  spdlog::info("network: tc netem {}: {}", netem.available ? "present" : "absent", netem.detail);
  {
    std::lock_guard lock(mu_);
    netem_detected_ = netem.available;
  }
  if (netem.available && options_.latency_mechanism != LatencyMechanismFlag::kDelayLine) {
    spdlog::info(
        "network: egress latency with an empty selector will use netem on devices with a default "
        "root qdisc; other latency faults use the NFQUEUE delay line");
  }
  if (why.empty()) {
    spdlog::info("network: latency via NFQUEUE delay line, queues {}..{}", options_.queue_first,
                 options_.queue_first + queue_used_.size() - 1);
  } else {
    spdlog::warn("network: latency unavailable: {}", why);
  }
  return Status::Ok();
}

std::string NetworkBackend::latency_unavailable_reason() const {
  std::lock_guard lock(mu_);
  return latency_unavailable_;
}

Status NetworkBackend::Validate(const v1::FaultSpec& spec) const {
  if (!spec.has_network()) return InvalidArgument("network: the spec has no network section");
  return faultspec::ValidateFaultSpec(spec);
}

Result<int> NetworkBackend::AllocateQueue() {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < queue_used_.size(); ++i) {
    if (!queue_used_[i]) {
      queue_used_[i] = true;
      return static_cast<int>(i);
    }
  }
  return ResourceExhausted("network: every NFQUEUE number of the configured range is in use (" +
                           std::to_string(queue_used_.size()) + " latency faults)");
}

void NetworkBackend::ReleaseQueue(int index) {
  std::lock_guard lock(mu_);
  if (index >= 0 && static_cast<size_t>(index) < queue_used_.size()) queue_used_[index] = false;
}

Result<std::unique_ptr<FaultHandle>> NetworkBackend::Apply(const std::string& fault_id,
                                                           const v1::FaultSpec& spec) {
  Status valid = Validate(spec);
  if (!valid.ok()) return valid;
  const std::string table = TableName(fault_id);
  if (!IsValidFaultId(fault_id) || !IsValidNftIdentifier(table)) {
    return InvalidArgument("network: invalid fault id '" + fault_id + "'");
  }
  const v1::NetworkFault& fault = spec.network();
  if (fault.has_latency()) {
    auto netem = ApplyNetem(fault_id, fault);
    if (!netem.ok()) return netem.status();
    if (*netem) return std::move(*netem);
  }
  const bool queued = QueuedFault(fault);
  if (queued) {
    std::string why = latency_unavailable_reason();
    if (!why.empty()) {
      return FailedPrecondition(
          std::string(fault.has_latency() ? "network.latency" : "network.loss") +
          ": the NFQUEUE delay line is unavailable here: " + why);
    }
  }
  if (fault.match().hosts_size() > 0) {
    // Fails at once, naming the host, when the resolver does not answer in time.
    auto first = ResolveHostAddressesWithin(
        {fault.match().hosts().begin(), fault.match().hosts().end()}, kResolveTimeout);
    if (!first.ok()) {
      return Status(first.status().code(), "network.match.hosts: " + first.status().message());
    }
  }
  auto hosts = std::make_unique<HostWatcher>(
      std::vector<std::string>(fault.match().hosts().begin(), fault.match().hosts().end()),
      std::chrono::milliseconds(fault.match().resolve_interval_ms()), "network fault " + fault_id,
      &ResolveHostAddresses);
  const std::vector<std::string> resolved = hosts->ResolveInitial();
  NetworkRuleOptions rule_options;
  rule_options.control_port = control_port_.load();

  // Queued faults: egress latency needs a reinject line (see delay_line.h); ingress latency and
  // correlated loss hold packets in place, one hold line serving both hooks.
  std::vector<int> queue_indexes;
  auto release_queues = [this, &queue_indexes] {
    for (int i : queue_indexes) ReleaseQueue(i);
  };
  std::vector<std::unique_ptr<nfqueue::DelayLine>> lines;
  int egress_queue = -1, ingress_queue = -1;
  if (queued) {
    const auto dir = EffectiveDirection(fault);
    const bool egress = dir != v1::NetworkSelector::INGRESS;
    const bool ingress = dir != v1::NetworkSelector::EGRESS;
    nfqueue::DelayLineSettings base;
    if (fault.has_latency()) {
      const auto& l = fault.latency();
      base.delay = std::chrono::microseconds(l.delay_us());
      base.jitter = std::chrono::microseconds(l.jitter_us());
      base.normal_distribution = l.distribution() == v1::NetworkFault::Latency::NORMAL;
      base.correlation = l.correlation_percent() / 100.0;
      base.reorder = l.reorder();
    } else {
      base.loss_percent = fault.loss().percent();
      base.loss_correlation = fault.loss().correlation_percent() / 100.0;
    }
    base.max_held_bytes = options_.max_held_bytes;
    base.realtime_priority = options_.realtime_priority;
    base.bypass_mark = kBypassMark;
    const bool reinject_egress = egress && fault.has_latency();
    const bool hold = ingress || !reinject_egress;
    for (int line_kind = 0; line_kind < 2; ++line_kind) {
      bool reinject = line_kind == 0;
      if ((reinject && !reinject_egress) || (!reinject && !hold)) continue;
      auto index = AllocateQueue();
      if (!index.ok()) {
        lines.clear();
        release_queues();
        return index.status();
      }
      queue_indexes.push_back(*index);
      if (rule_options.queue_mark == 0) rule_options.queue_mark = 1u << (kFirstMarkBit + *index);
      nfqueue::DelayLineSettings ds = base;
      ds.queue_num = static_cast<uint16_t>(options_.queue_first + *index);
      ds.reinject = reinject;
      ds.clear_mark = rule_options.queue_mark;
      if (reinject) {
        egress_queue = ds.queue_num;
      } else {
        if (ingress) ingress_queue = ds.queue_num;
        if (egress && !reinject_egress) egress_queue = ds.queue_num;
      }
      auto started = nfqueue::DelayLine::Start(ds);
      if (!started.ok()) {
        lines.clear();
        release_queues();
        return started.status();
      }
      lines.push_back(std::move(*started));
    }
    rule_options.bypass_mark = kBypassMark;
  }

  auto owned = options_.tables->Create("inet", table,
                                       NetworkApplyBatch(table, fault, rule_options, resolved));
  if (!owned.ok()) {
    lines.clear();
    release_queues();
    return owned.status();
  }
  auto handle = std::make_unique<NetworkFaultHandle>(fault_id, fault, options_.tables, *owned,
                                                     std::move(hosts));
  if (!lines.empty()) {
    auto rules = SharedQueueRules(options_);
    Status q = rules->Add(table, egress_queue, ingress_queue, rule_options.queue_mark, *nft_);
    if (!q.ok()) {
      (void)options_.tables->Revert(*owned);
      lines.clear();
      release_queues();
      return q;
    }
    handle->AttachDelayLines(std::move(lines), rules, [this, queue_indexes] {
      for (int i : queue_indexes) ReleaseQueue(i);
    });
  }
  handle->StartResolver();
  spdlog::info("network fault {} applied ({}, {} peer address(es) resolved)", fault_id,
               v1::NetworkFault::descriptor()->FindFieldByNumber(fault.kind_case())->name(),
               resolved.size());
  return std::unique_ptr<FaultHandle>(std::move(handle));
}

Result<std::unique_ptr<FaultHandle>> NetworkBackend::ApplyNetem(const std::string& fault_id,
                                                                const v1::NetworkFault& fault) {
  bool detected;
  {
    std::lock_guard lock(mu_);
    detected = netem_detected_;
  }
  std::lock_guard netem_lock(netem_mu_);
  auto decision = DecideNetem(options_.latency_mechanism, detected, fault, options_.run);
  if (!decision.ok()) return decision.status();
  if (!decision->use) {
    spdlog::info("network fault {}: latency via the NFQUEUE delay line, not netem: {}", fault_id,
                 decision->reason);
    return std::unique_ptr<FaultHandle>();
  }
  std::string record;
  if (!options_.netem_record_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.netem_record_dir, ec);
    record = options_.netem_record_dir + "/" + fault_id;
    // Before any qdisc changes: a crash in between leaves a record naming default qdiscs only.
    if (Status s = WriteQdiscRecords(record, decision->records); !s.ok()) return s;
  }
  // netem has no timeout of its own: a guard restores the qdiscs if the agent dies (before the
  // qdiscs change, so no instant is unguarded).
  std::unique_ptr<host::DeathGuard> guard;
  if (options_.guard_netem && !record.empty()) {
    auto spawned = host::DeathGuard::Spawn({"netem", record});
    if (!spawned.ok()) {
      (void)::unlink(record.c_str());
      return spawned.status();
    }
    guard = std::move(*spawned);
  }
  if (Status s =
          InstallNetem(options_.run, decision->records, decision->args, control_port_.load());
      !s.ok()) {
    // InstallNetem restored what it changed. The probe checked sch_netem only; sch_prio or
    // cls_u32 may still be missing: auto falls back to the delay line, netem fails.
    if (!record.empty()) (void)::unlink(record.c_str());
    if (options_.latency_mechanism == LatencyMechanismFlag::kNetem) return s;
    spdlog::warn("network fault {}: netem setup failed ({}); using the NFQUEUE delay line",
                 fault_id, s.message());
    return std::unique_ptr<FaultHandle>();
  }
  std::string devices;
  for (const auto& r : decision->records) devices += (devices.empty() ? "" : ",") + r.device;
  spdlog::info("network fault {} applied (latency via netem on {})", fault_id, devices);
  return std::unique_ptr<FaultHandle>(std::make_unique<NetemFaultHandle>(
      options_.run, std::move(decision->records), record, std::move(guard)));
}

Status NetworkBackend::RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) {
  const std::string table = TableName(fault_id);
  if (!IsValidNftIdentifier(table)) {
    return InvalidArgument("network: invalid fault id '" + fault_id + "'");
  }
  if (spec.has_network() && spec.network().has_latency() && !options_.netem_record_dir.empty()) {
    Status s = RevertNetemOrphan(options_.run, options_.netem_record_dir + "/" + fault_id);
    if (!s.ok()) return s;
  }
  if (spec.has_network() && QueuedFault(spec.network())) {
    Status s = SharedQueueRules(options_)->Remove(table, *nft_, /*orphan=*/true);
    if (!s.ok()) return s;
  }
  return options_.tables->RevertOrphan("inet", table);
}

}  // namespace faultline::agent::netfilter
