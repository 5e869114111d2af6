// `process:` → v1::ProcessFault: `action: kill|pause`, exactly one selector (`name`, `pidfile`
// or `cgroup`), optionally `count` or `percent` of the matches, and for kill `signal` (default
// SIGKILL) and `interval` (keep killing restarted processes). The rules are
// common/faultspec/process_fault's; this file reads YAML.
#include <cctype>

#include "controller/experiment/kinds/kind_reader.h"

namespace faultline::experiment {

void ReadProcessFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path) {
  using faultline::v1::ProcessFault;
  YamlReader& y = ctx.yaml;
  auto fields = y.Map(
      n, path, {"action", "signal", "name", "pidfile", "cgroup", "count", "percent", "interval"});
  if (!fields) return;
  ProcessFault* proc = ctx.fault.spec.mutable_process();
  if (auto* v = y.Need(*fields, n, path, "action")) {
    ctx.Note("process.action", *v, path + ".action");
    if (auto s = y.String(*v, path + ".action")) {
      if (*s == "kill") {
        proc->set_action(ProcessFault::KILL);
      } else if (*s == "pause") {
        proc->set_action(ProcessFault::PAUSE);
      } else {
        y.Error(*v, path + ".action",
                "unknown process action " + Quoted(*s) +
                    " (expected kill: send a signal once, or pause: SIGSTOP/freeze until revert)");
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "signal", "process.signal")) {
    // "term", "TERM", "sigterm" and "SIGTERM" all name SIGTERM.
    if (auto s = y.String(*v, path + ".signal")) {
      std::string upper = *s;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (upper.rfind("SIG", 0) != 0) upper = "SIG" + upper;
      proc->set_signal(upper);
    }
  }
  std::vector<const MapField*> selectors;
  for (const MapField& f : *fields) {
    if (f.key == "name" || f.key == "pidfile" || f.key == "cgroup") selectors.push_back(&f);
  }
  if (selectors.empty()) {
    y.Error(n, path, "a process fault needs exactly one selector: name, pidfile or cgroup");
  } else if (selectors.size() > 1) {
    y.Error(selectors[1]->key_node, YamlReader::Sub(path, selectors[1]->key),
            "a process fault has exactly one selector; this one already has '" + selectors[0]->key +
                "'");
  } else {
    const MapField& sel = *selectors[0];
    const std::string spath = YamlReader::Sub(path, sel.key);
    ctx.Note("process." + sel.key, sel.value, spath);
    if (auto s = y.String(sel.value, spath)) {
      if (sel.key == "name") {
        proc->set_name(*s);
      } else if (sel.key == "pidfile") {
        proc->set_pidfile(*s);
      } else {
        proc->set_cgroup(*s);
      }
    }
  }
  const YAML::Node* count = ctx.Field(*fields, n, path, "count", "process.count");
  const YAML::Node* percent = ctx.Field(*fields, n, path, "percent", "process.percent");
  // 0 would mean "unset" in the proto: both start at 1 here; their upper bounds are the rule's.
  if (count) {
    if (auto c = y.Int(*count, path + ".count", 1, 4294967295LL)) {
      proc->set_count(static_cast<uint32_t>(*c));
    }
  }
  if (percent) {
    if (auto s = y.String(*percent, path + ".percent")) {
      std::string text = *s;
      if (!text.empty() && text.back() == '%') text.pop_back();
      auto p = ParseInt(text, 1, 4294967295LL);
      if (!p || text[0] == '-') {
        y.Error(*percent, path + ".percent", "expected 1% to 100%, got " + Quoted(*s));
      } else {
        proc->set_percent(static_cast<uint32_t>(*p));
      }
    }
  }
  if (auto* v = ctx.Field(*fields, n, path, "interval", "process.interval_ms")) {
    if (auto d = y.Dur(*v, path + ".interval", true)) {
      proc->set_interval_ms(ClampedCount<std::chrono::milliseconds>(*d));
    }
  }
}

}  // namespace faultline::experiment
