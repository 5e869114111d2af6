#pragma once
// TeamPolicy: which agents a team may target, how much of them one run may hit, and when
// (`faultline-controller --policy FILE`; reference and example in docs/access.md).
//
//   apiVersion: faultline/v1
//   kind: TeamPolicy
//   teams:
//     orders:
//       targets:                      # each target's selector must contain one of these
//         - {team: orders}
//       max_blast_radius: 50%         # share of the agents the run's targets match (0-100%)
//       windows:                      # none: any time; else inside one of these
//         - {days: [mon-fri], hours: "09:00-17:00", tz: Europe/Berlin}
//
// Rules, in the order CheckRun applies them (the first broken one is reported):
//  1. team: the principal must carry a team that the policy lists ("teams.<team>").
//  2. targets: every target group of the experiment must select within an allowed selector: its
//     selector contains every label=value of at least one entry (so it can only match agents
//     that entry matches).
//  3. max_blast_radius: the run faults at most this share of the agents that its faulted target
//     groups match in the live fleet: sum over those groups of the agents their mode picks
//     (all: every match; one: 1; fixed:N: N; percent:P: floor(matched*P/100), at least 1 — the
//     engine's rule; a workload target counts every matched agent unless its mode is one or
//     fixed:N) divided by the number of distinct agents they match. Conservative: never below
//     the real share.
//  4. windows: the current time, in each window's time zone, falls on one of its days and inside
//     its hours ("HH:MM-HH:MM", end exclusive, may wrap midnight).
// Without a policy file there are no team rules (roles still apply).
//
// Immutable after Parse/Load; CheckRun is pure and thread-safe.

#include <bitset>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "controller/access/principal.h"
#include "controller/engine/inventory.h"
#include "controller/experiment/experiment.h"
#include "controller/schedule/cron.h"

namespace faultline::access {

struct TimeWindow {
  std::bitset<7> days;  // 0 = Sunday
  schedule::RunWindow hours;
  std::optional<schedule::TimeZone> tz;  // always set by Parse
  std::string text;                      // "mon-fri 09:00-17:00 Europe/Berlin", for messages
};

struct TeamRules {
  std::string team;
  std::vector<std::map<std::string, std::string>> targets;  // allowed selectors (non-empty)
  double max_blast_radius = 1.0;                            // 0..1
  std::vector<TimeWindow> windows;                          // empty: any time
};

class TeamPolicy {
 public:
  // Parses a policy document. INVALID_ARGUMENT whose message lists every problem, one per line,
  // as "file:line:column: field: message" (e.g. "policy.yaml:7:25: teams.orders.max_blast_radius:
  // must be between 0% and 100%"). `file` names the source in messages.
  static Result<std::shared_ptr<const TeamPolicy>> Parse(const std::string& text,
                                                         const std::string& file);
  // Parse of the file's content; NOT_FOUND when it cannot be read.
  static Result<std::shared_ptr<const TeamPolicy>> Load(const std::string& path);

  // OK when `who` may start `experiment` now (`now_unix_ms`) on `fleet` (the live agents);
  // PERMISSION_DENIED naming the rule ("team policy (teams.orders.targets): ...") otherwise.
  // Pure.
  Status CheckRun(const Principal& who, const experiment::Experiment& experiment,
                  const engine::Inventory& fleet, int64_t now_unix_ms) const;

  const std::string& source() const { return source_; }
  const std::map<std::string, TeamRules>& teams() const { return teams_; }

 private:
  std::string source_;
  std::map<std::string, TeamRules> teams_;
};

// The policy in force from `--policy FILE`: loaded at start, reloaded on SIGHUP (Reload). A
// reload that fails keeps the previous policy in force (and says why); a policy is never
// half-applied. Thread-safe.
class PolicyFile {
 public:
  explicit PolicyFile(std::string path) : path_(std::move(path)) {}
  // Reads and parses the file; on success it replaces the policy in force. Errors as
  // TeamPolicy::Load (the old policy stays).
  Status Reload();
  // The policy in force; null before the first successful Reload.
  std::shared_ptr<const TeamPolicy> Current() const;
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const TeamPolicy> current_;  // guarded by mu_
};

}  // namespace faultline::access
