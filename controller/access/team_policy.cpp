#include "controller/access/team_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/atomic_file.h"
#include "controller/engine/workload_selection.h"
#include "controller/experiment/yaml_reader.h"

namespace faultline::access {
namespace {

using experiment::YamlReader;

constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

std::optional<int> DayIndex(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  for (int i = 0; i < 7; ++i) {
    if (s == kDayNames[i]) return i;
  }
  return std::nullopt;
}

std::string SelectorText(const std::map<std::string, std::string>& selector) {
  std::string out = "{";
  for (const auto& [k, v] : selector) out += (out.size() > 1 ? ", " : "") + k + ": " + v;
  return out + "}";
}

std::string Percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g%%", share * 100.0);
  return buf;
}

// The policy reader: the experiment parser's YAML reader (same diagnostics), policy sections.
class PolicyReader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  std::vector<experiment::Diagnostic> Read(const std::string& text,
                                           std::map<std::string, TeamRules>* teams) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      Error(Pos(e.mark), "", "invalid YAML: " + experiment::Printable(e.msg, 200));
      return errors_;
    }
    if (root.IsNull()) {
      Error(experiment::SourcePos{file_, 1, 1}, "",
            "empty policy: expected apiVersion: faultline/v1, kind: TeamPolicy and teams");
      return errors_;
    }
    auto top = Map(root, "", {"apiVersion", "kind", "teams"});
    if (!top) return errors_;
    if (const YAML::Node* v = Need(*top, root, "", "apiVersion")) {
      if (auto s = String(*v, "apiVersion"); s && *s != "faultline/v1") {
        Error(*v, "apiVersion", "expected faultline/v1, got " + experiment::Quoted(*s));
      }
    }
    if (const YAML::Node* k = Need(*top, root, "", "kind")) {
      if (auto s = String(*k, "kind"); s && *s != "TeamPolicy") {
        Error(*k, "kind", "expected TeamPolicy, got " + experiment::Quoted(*s));
      }
    }
    const YAML::Node* t = Need(*top, root, "", "teams");
    if (t == nullptr) return errors_;
    auto entries = MapOf(*t, "teams", [&](const YAML::Node& key, const std::string& name) {
      if (!IsValidTeamName(name)) {
        Error(key, "teams",
              experiment::Quoted(name) +
                  " is not a team name ([A-Za-z0-9._-]{1,63}, as in certificates)");
        return false;
      }
      return true;
    });
    if (!entries) return errors_;
    if (entries->empty()) Error(*t, "teams", "lists no team");
    for (const experiment::MapField& e : *entries) {
      TeamRules rules;
      rules.team = e.key;
      if (ReadTeam(e.value, Sub("teams", e.key), &rules)) (*teams)[e.key] = std::move(rules);
    }
    return errors_;
  }

 private:
  bool ReadTeam(const YAML::Node& n, const std::string& path, TeamRules* rules) {
    const size_t before = error_count();
    auto fields = Map(n, path, {"targets", "max_blast_radius", "windows"});
    if (!fields) return false;
    if (const YAML::Node* targets = Need(*fields, n, path, "targets")) {
      const std::string tp = Sub(path, "targets");
      if (List(*targets, tp, true)) {
        for (size_t i = 0; i < targets->size(); ++i) {
          const YAML::Node sel = (*targets)[i];
          auto labels = Labels(sel, Index(tp, i));
          if (labels.empty() && sel.IsMap() && sel.size() == 0) {
            Error(sel, Index(tp, i),
                  "an empty selector would allow every agent; name at least one label");
          }
          if (!labels.empty()) rules->targets.push_back(std::move(labels));
        }
      }
    }
    if (const YAML::Node* b = Find(*fields, "max_blast_radius")) {
      const std::string bp = Sub(path, "max_blast_radius");
      if (auto share = Share(*b, bp)) {
        if (*share <= 0.0 || *share > 1.0) {
          Error(*b, bp, "must be more than 0% and at most 100%");
        } else {
          rules->max_blast_radius = *share;
        }
      }
    }
    if (const YAML::Node* w = Find(*fields, "windows")) {
      const std::string wp = Sub(path, "windows");
      if (List(*w, wp, false)) {
        for (size_t i = 0; i < w->size(); ++i) ReadWindow((*w)[i], Index(wp, i), rules);
      }
    }
    return error_count() == before;
  }

  void ReadWindow(const YAML::Node& n, const std::string& path, TeamRules* rules) {
    auto fields = Map(n, path, {"days", "hours", "tz"});
    if (!fields) return;
    TimeWindow window;
    std::string days_text = "every day";
    if (const YAML::Node* d = Find(*fields, "days")) {
      const std::string dp = Sub(path, "days");
      if (List(*d, dp, true)) {
        days_text.clear();
        for (size_t i = 0; i < d->size(); ++i) {
          auto s = String((*d)[i], Index(dp, i));
          if (!s) continue;
          // "mon" or a range "mon-fri" (may wrap: "fri-mon").
          size_t dash = s->find('-');
          auto from = DayIndex(s->substr(0, dash));
          auto to = dash == std::string::npos ? from : DayIndex(s->substr(dash + 1));
          if (!from || !to) {
            Error((*d)[i], Index(dp, i),
                  "expected a day (sun, mon, tue, wed, thu, fri, sat) or a range such as "
                  "mon-fri, got " +
                      experiment::Quoted(*s));
            continue;
          }
          for (int day = *from;; day = (day + 1) % 7) {
            window.days.set(day);
            if (day == *to) break;
          }
          days_text += (days_text.empty() ? "" : ",") + *s;
        }
      }
    } else {
      window.days.set();
    }
    std::string hours_text = "00:00-24:00";
    if (const YAML::Node* h = Find(*fields, "hours")) {
      const std::string hp = Sub(path, "hours");
      if (auto s = String(*h, hp)) {
        auto parsed = schedule::RunWindow::Parse(*s);
        if (!parsed.ok()) {
          Error(*h, hp, parsed.status().message());
        } else {
          window.hours = *parsed;
          hours_text = *s;
        }
      }
    }
    std::string tz_name = "UTC";
    if (const YAML::Node* z = Find(*fields, "tz")) {
      if (auto s = String(*z, Sub(path, "tz"))) tz_name = *s;
    }
    auto tz = schedule::TimeZone::Load(tz_name);
    if (!tz.ok()) {
      const YAML::Node* z = Find(*fields, "tz");
      Error(z ? *z : n, Sub(path, "tz"), tz.status().message());
      return;
    }
    window.tz = *tz;
    window.text = days_text + " " + hours_text + " " + tz_name;
    rules->windows.push_back(std::move(window));
  }
};

}  // namespace

Result<std::shared_ptr<const TeamPolicy>> TeamPolicy::Parse(const std::string& text,
                                                            const std::string& file) {
  auto policy = std::make_shared<TeamPolicy>();
  policy->source_ = file;
  PolicyReader reader(file);
  std::vector<experiment::Diagnostic> errors = reader.Read(text, &policy->teams_);
  if (!errors.empty()) {
    std::string message = "invalid team policy:";
    for (const auto& d : errors) message += "\n" + d.ToString();
    return InvalidArgument(message);
  }
  return std::shared_ptr<const TeamPolicy>(std::move(policy));
}

Result<std::shared_ptr<const TeamPolicy>> TeamPolicy::Load(const std::string& path) {
  Result<std::string> text = ReadFileToString(path, 1 << 20);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

Status TeamPolicy::CheckRun(const Principal& who, const experiment::Experiment& exp,
                            const engine::Inventory& fleet, int64_t now_unix_ms) const {
  const std::string refused = "team policy " + source_ + " refuses experiment " + exp.name + ": ";
  if (who.team.empty()) {
    return PermissionDenied(refused + "(teams) " + who.Describe() +
                            " has no team; with a team policy only a team may start runs "
                            "(certificate URI SAN faultline:team:<team>, or a token with --team)");
  }
  auto it = teams_.find(who.team);
  if (it == teams_.end()) {
    return PermissionDenied(refused + "(teams) team " + who.team + " is not in the policy");
  }
  const TeamRules& rules = it->second;
  const std::string at = "(teams." + rules.team + ".";

  // 2. targets.
  for (const experiment::Target& t : exp.targets) {
    bool within = std::any_of(rules.targets.begin(), rules.targets.end(), [&](const auto& allowed) {
      return std::all_of(allowed.begin(), allowed.end(), [&](const auto& kv) {
        auto f = t.selector.find(kv.first);
        return f != t.selector.end() && f->second == kv.second;
      });
    });
    if (!within) {
      std::string allowed;
      for (const auto& s : rules.targets)
        allowed += (allowed.empty() ? "" : ", ") + SelectorText(s);
      return PermissionDenied(refused + at + "targets) target '" + t.name + "' selects " +
                              SelectorText(t.selector) + ", which is not within what team " +
                              rules.team + " may target: " + allowed);
    }
  }

  // 3. blast radius over the faulted target groups.
  std::set<std::string> faulted;
  for (const experiment::Fault& f : exp.faults) faulted.insert(f.target);
  std::set<std::string> matched_agents;
  size_t picked = 0;
  for (const experiment::Target& t : exp.targets) {
    if (!faulted.count(t.name)) continue;
    size_t matched = 0;
    for (const engine::AgentEndpoint& a : fleet.agents) {
      if (engine::MatchesSelector(a, t.selector)) {
        ++matched;
        matched_agents.insert(a.name);
      }
    }
    if (matched == 0) continue;
    size_t count = matched;
    const auto kind = t.mode.kind;
    if (!t.workloads || kind == experiment::TargetMode::Kind::kOne ||
        kind == experiment::TargetMode::Kind::kFixed) {
      Result<size_t> n = engine::ModeCount(t.mode, matched);
      count = n.ok() ? std::min(*n, matched) : matched;
    }
    picked += count;
  }
  if (!matched_agents.empty()) {
    double share = std::min(1.0, static_cast<double>(picked) / matched_agents.size());
    if (share > rules.max_blast_radius + 1e-9) {
      return PermissionDenied(
          refused + at + "max_blast_radius) the run would fault " +
          std::to_string(std::min(picked, matched_agents.size())) + " of the " +
          std::to_string(matched_agents.size()) + " agents its targets match (" + Percent(share) +
          "), more than team " + rules.team + "'s limit of " + Percent(rules.max_blast_radius));
    }
  }

  // 4. windows.
  if (!rules.windows.empty()) {
    std::string allowed, now_text;
    for (const TimeWindow& w : rules.windows) {
      schedule::TimeZone::Civil c = w.tz->ToLocal(now_unix_ms);
      if (w.days.test(c.weekday) && w.hours.Contains(c.hour, c.minute)) return Status::Ok();
      allowed += (allowed.empty() ? "" : "; ") + w.text;
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%s %02d:%02d in %s", kDayNames[c.weekday], c.hour, c.minute,
                    w.tz->name().c_str());
      now_text += (now_text.empty() ? "" : ", ") + std::string(buf);
    }
    return PermissionDenied(refused + at + "windows) runs are allowed only " + allowed +
                            "; it is " + now_text);
  }
  return Status::Ok();
}

Status PolicyFile::Reload() {
  auto loaded = TeamPolicy::Load(path_);
  if (!loaded.ok()) return loaded.status();
  std::lock_guard lock(mu_);
  current_ = *loaded;
  return Status::Ok();
}

std::shared_ptr<const TeamPolicy> PolicyFile::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace faultline::access
