#include "controller/experiment/parser.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "common/faultspec/fault_kinds.h"
#include "common/faultspec/workload_selector.h"
#include "controller/experiment/kinds/kind_reader.h"
#include "controller/experiment/parser_sections.h"

namespace faultline::experiment {

std::string Diagnostic::ToString() const {
  std::string out = pos.file.empty() ? "<input>" : pos.file;
  if (pos.line > 0) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  out += ": ";
  if (!field.empty()) out += field + ": ";
  out += message;
  return out;
}

namespace {

using namespace std::chrono_literals;

constexpr std::string_view kApiVersion = "faultline/v1";
constexpr Duration kMaxFaultDuration = 24h;
constexpr size_t kMaxDescriptionLength = 4096;

// Counts documents without building nodes. Used instead of YAML::LoadAll, which in yaml-cpp 0.7
// loops forever, allocating, on some invalid input such as a lone "," (yaml-cpp issue #1040).
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { last_start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark last_start = YAML::Mark::null_mark();
};

}  // namespace

ParseOutcome Parser::Run(std::string_view text) {
  exp_.source_file = file_;
  std::vector<YAML::Node> docs;
  try {
    const std::string input(text);
    YAML::Node first = YAML::Load(input);
    if (!first.IsNull()) {
      docs.push_back(first);
      // Only ask whether a second document exists; never iterate to the end (see above).
      std::istringstream stream(input);
      YAML::Parser events(stream);
      DocumentCounter counter;
      if (events.HandleNextDocument(counter) && events.HandleNextDocument(counter)) {
        Error(Pos(counter.last_start), "",
              "expected one YAML document, found more (remove the '---' separator)");
      }
    }
  } catch (const YAML::DeepRecursion& e) {
    Error(Pos(e.mark), "", "YAML nested too deeply");
  } catch (const YAML::Exception& e) {
    Error(Pos(e.mark), "", "invalid YAML: " + Printable(e.msg, 200));
  } catch (const std::exception& e) {
    Error(SourcePos{file_, 0, 0}, "", std::string("invalid YAML: ") + e.what());
  }
  if (errors_.empty()) {
    if (docs.empty()) {
      Error(SourcePos{file_, 1, 1}, "",
            "no experiment found (empty document): expected a mapping with apiVersion: " +
                std::string(kApiVersion) + " and kind: Experiment");
    } else {
      const YAML::Node& root = docs[0];
      try {
        auto top = Map(root, "",
                       {"apiVersion", "kind", "metadata", "targets", "faults", "probes",
                        "steady_state", "objectives", "abort", "max_duration"});
        if (!top) {
          errors_.back().message =
              "the file must be a YAML mapping (apiVersion, kind, ...), got " + KindOf(root);
        } else {
          if (auto* v = Need(*top, root, "", "apiVersion")) {
            if (auto s = String(*v, "apiVersion")) {
              if (*s != kApiVersion) {
                Error(*v, "apiVersion",
                      "must be " + std::string(kApiVersion) + ", got " + Quoted(*s));
              }
              exp_.api_version = *s;
            }
          }
          if (auto* v = Need(*top, root, "", "kind")) {
            if (auto s = String(*v, "kind"); s && *s != "Experiment") {
              Error(*v, "kind", "must be Experiment, got " + Quoted(*s));
            }
          }
          if (auto* v = Need(*top, root, "", "metadata")) ParseMetadata(*v);
          if (auto* v = Need(*top, root, "", "targets")) ParseTargets(*v);
          if (auto* v = Need(*top, root, "", "probes")) ParseProbes(*v);
          if (auto* v = Need(*top, root, "", "faults")) ParseFaults(*v);
          if (auto* v = Find(*top, "steady_state"); v && !v->IsNull()) {
            ParseSteadyState(*v);
          } else {
            Warn(root, "steady_state",
                 "no steady-state probes: faults are injected without first checking that the "
                 "system is healthy");
          }
          if (auto* v = Need(*top, root, "", "objectives")) ParseObjectives(*v);
          if (auto* v = Find(*top, "abort"); v && !v->IsNull()) ParseAborts(*v);
          if (auto* v = Find(*top, "max_duration")) {
            if (v->IsNull()) {
              Error(*v, "max_duration", "requires a value");
            } else if (auto d = Dur(*v, "max_duration", true)) {
              exp_.max_duration = d;
              max_duration_node_.emplace(*v);
            }
          }
          CrossChecks(root);
        }
      } catch (const std::exception& e) {
        // yaml-cpp throws on some malformed node accesses; never let that escape.
        Error(SourcePos{file_, 0, 0}, "", std::string("cannot read experiment: ") + e.what());
      }
    }
  }

  auto by_position = [](const Diagnostic& a, const Diagnostic& b) {
    return std::pair(a.pos.line, a.pos.column) < std::pair(b.pos.line, b.pos.column);
  };
  std::stable_sort(errors_.begin(), errors_.end(), by_position);
  if (too_many_errors_) {
    errors_.push_back(
        {SourcePos{file_, 0, 0}, "",
         "too many errors; only the first " + std::to_string(kMaxErrors) + " are shown"});
  }
  std::stable_sort(warnings_.begin(), warnings_.end(), by_position);
  ParseOutcome out;
  out.errors = std::move(errors_);
  out.warnings = std::move(warnings_);
  if (out.errors.empty()) out.experiment = std::move(exp_);
  return out;
}

void Parser::ParseMetadata(const YAML::Node& n) {
  auto fields = Map(n, "metadata", {"name", "description", "labels"});
  if (!fields) return;
  if (auto* v = Need(*fields, n, "metadata", "name")) {
    if (auto s = Name(*v, "metadata.name")) exp_.name = *s;
  }
  if (auto* v = Find(*fields, "description"); v && !v->IsNull()) {
    if (auto s = String(*v, "metadata.description")) {
      if (s->size() > kMaxDescriptionLength) {
        Error(*v, "metadata.description", "longer than 4096 characters");
      } else {
        exp_.description = *s;
      }
    }
  }
  if (auto* v = Find(*fields, "labels"); v && !v->IsNull()) {
    exp_.labels = Labels(*v, "metadata.labels");
  }
}

void Parser::ParseTargets(const YAML::Node& n) {
  auto entries = MapOf(n, "targets", [&](const YAML::Node& key_node, const std::string& key) {
    if (IsName(key)) return true;
    Error(key_node, "targets." + Printable(key), "target name " + Quoted(key) + " " + kNameRule);
    return false;
  });
  if (!entries) return;
  if (entries->empty() && n.size() == 0) Error(n, "targets", "needs at least one target");
  for (const MapField& e : *entries) {
    target_names_.insert(e.key);
    const std::string path = "targets." + e.key;
    Target t;
    t.name = e.key;
    t.pos = Pos(e.key_node);
    auto fields = Map(e.value, path, {"selector", "workloads", "mode"});
    if (!fields) continue;
    size_t before = errors_.size();
    if (auto* v = Need(*fields, e.value, path, "selector")) {
      t.selector = Labels(*v, path + ".selector");
      if (v->IsMap() && v->size() == 0) {
        Error(*v, path + ".selector",
              "must select by at least one label (an empty selector would match every agent)");
      }
    }
    if (auto* v = Find(*fields, "workloads"); v && !v->IsNull()) {
      t.workloads = ParseWorkloads(*v, path + ".workloads");
    }
    if (auto* v = Find(*fields, "mode"); v && !v->IsNull()) {
      if (auto s = String(*v, path + ".mode")) {
        const std::string& m = *s;
        bool good = true;
        if (m == "all") {
          t.mode.kind = TargetMode::Kind::kAll;
        } else if (m == "one") {
          t.mode.kind = TargetMode::Kind::kOne;
        } else if (m.rfind("fixed:", 0) == 0) {
          auto nv = ParseInt(std::string_view(m).substr(6), 1, 100000);
          t.mode = {TargetMode::Kind::kFixed, nv ? static_cast<int>(*nv) : 0};
          good = nv.has_value();
        } else if (m.rfind("percent:", 0) == 0) {
          auto pv = ParseInt(std::string_view(m).substr(8), 1, 100);
          t.mode = {TargetMode::Kind::kPercent, pv ? static_cast<int>(*pv) : 0};
          good = pv.has_value();
        } else {
          good = false;
        }
        if (!good) {
          Error(*v, path + ".mode",
                "must be all, one, fixed:N (N >= 1) or percent:P (P from 1 to 100), got " +
                    Quoted(m));
        }
      }
    }
    if (errors_.size() == before) exp_.targets.push_back(std::move(t));
  }
}

v1::WorkloadSelector Parser::ParseWorkloads(const YAML::Node& n, const std::string& path) {
  v1::WorkloadSelector w;
  const size_t before = errors_.size();
  auto fields =
      Map(n, path, {"runtime", "labels", "names", "ids", "namespace", "netns", "cgroup", "pid"});
  if (!fields) return w;
  // Where each selector field came from, so faultspec's problems point into the file.
  std::map<std::string, std::pair<SourcePos, std::string>> sources;
  auto note = [&](const std::string& proto, const YAML::Node& at, const std::string& yaml) {
    sources[proto] = {Pos(at), Sub(path, yaml)};
  };
  sources["workloads"] = {Pos(n), path};
  if (auto* v = Find(*fields, "runtime"); v && !v->IsNull()) {
    note("workloads.runtime", *v, "runtime");
    if (auto s = String(*v, Sub(path, "runtime"))) {
      if (*s == "docker") {
        w.set_runtime(v1::WorkloadSelector::DOCKER);
      } else if (*s == "cri") {
        w.set_runtime(v1::WorkloadSelector::CRI);
      } else if (*s == "any") {
        w.set_runtime(v1::WorkloadSelector::ANY);
      } else {
        Error(*v, Sub(path, "runtime"), "expected docker, cri or any, got " + Quoted(*s));
      }
    }
  }
  if (auto* v = Find(*fields, "labels"); v && !v->IsNull()) {
    note("workloads.labels", *v, "labels");
    // Container and pod labels are wider than agent labels ("app.kubernetes.io/name"): the
    // keys are free-form here and checked by faultspec below.
    auto entries =
        MapOf(*v, Sub(path, "labels"), [](const YAML::Node&, const std::string&) { return true; });
    if (entries) {
      for (const MapField& f : *entries) {
        if (auto s = String(f.value, Sub(Sub(path, "labels"), f.key))) {
          (*w.mutable_labels())[f.key] = *s;
        }
      }
    }
  }
  auto strings = [&](const char* key, const std::string& proto,
                     google::protobuf::RepeatedPtrField<std::string>* out) {
    auto* v = Find(*fields, key);
    if (v == nullptr || v->IsNull()) return;
    note(proto, *v, key);
    if (!List(*v, Sub(path, key), true)) return;
    for (size_t i = 0; i < v->size(); ++i) {
      if (auto s = String((*v)[i], Index(Sub(path, key), i))) {
        note(proto + "[" + std::to_string(out->size()) + "]", (*v)[i], Index(std::string(key), i));
        out->Add(std::string(*s));
      }
    }
  };
  strings("names", "workloads.names", w.mutable_names());
  strings("ids", "workloads.ids", w.mutable_ids());
  auto string_field = [&](const char* key, const std::string& proto, std::string* out) {
    auto* v = Find(*fields, key);
    if (v == nullptr || v->IsNull()) return;
    note(proto, *v, key);
    if (auto s = String(*v, Sub(path, key))) *out = *s;
  };
  string_field("namespace", "workloads.pod_namespace", w.mutable_pod_namespace());
  string_field("netns", "workloads.netns_path", w.mutable_netns_path());
  string_field("cgroup", "workloads.cgroup_path", w.mutable_cgroup_path());
  if (auto* v = Find(*fields, "pid"); v && !v->IsNull()) {
    note("workloads.pid", *v, "pid");
    if (auto p = Int(*v, Sub(path, "pid"), 0, 4294967295LL)) w.set_pid(static_cast<uint32_t>(*p));
  }
  // As for fault kinds: the shared rules run only on what read cleanly, so a value the reader
  // already refused is not reported twice.
  if (errors_.size() != before) return w;
  faultspec::FieldProblems problems;
  faultspec::ValidateWorkloadSelector(w, "workloads", &problems);
  for (const faultspec::FieldProblem& p : problems.problems()) {
    // The nearest recorded field: "workloads.names[2]" → "workloads.names" → "workloads".
    std::string key = p.field;
    auto it = sources.find(key);
    while (it == sources.end() && !key.empty()) {
      size_t cut = key.find_last_of(".[");
      key = cut == std::string::npos ? "" : key.substr(0, cut);
      it = sources.find(key);
    }
    if (it == sources.end()) it = sources.find("workloads");
    Error(it->second.first, it->second.second, p.message);
  }
  return w;
}

namespace {

// The fault kinds' names (common/faultspec's table), which are also their YAML keys.
std::vector<std::string_view> KindNames() {
  std::vector<std::string_view> names;
  for (const faultspec::FaultKind& k : faultspec::FaultKinds()) names.push_back(k.name);
  return names;
}

std::string KindList() {
  std::vector<std::string> names;
  for (std::string_view k : KindNames()) names.emplace_back(k);
  return JoinList(names);
}

}  // namespace

void Parser::ParseFaults(const YAML::Node& n) {
  if (!List(n, "faults", true)) return;
  std::vector<std::string_view> keys = {"name", "target", "duration"};
  for (std::string_view k : KindNames()) keys.push_back(k);
  std::set<std::string> names;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string path = Index("faults", i);
    auto fields = Map(item, path, keys);
    if (!fields) continue;
    size_t before = errors_.size();
    Fault f;
    f.pos = Pos(item);
    if (auto* v = Need(*fields, item, path, "name")) {
      if (auto s = Name(*v, path + ".name")) {
        if (!names.insert(*s).second)
          Error(*v, path + ".name", "duplicate fault name " + Quoted(*s));
        f.name = *s;
      }
    }
    if (auto* v = Need(*fields, item, path, "target")) {
      if (auto s = String(*v, path + ".target")) {
        if (!target_names_.count(*s)) {
          Error(*v, path + ".target", "unknown target " + Quoted(*s) + " (not defined in targets)");
        }
        f.target = *s;
      }
    }
    if (auto* v = Need(*fields, item, path, "duration")) {
      if (auto d = Dur(*v, path + ".duration", true, kMaxFaultDuration)) f.duration = *d;
    }
    ParseFaultKind(*fields, item, path, &f);
    if (errors_.size() == before) exp_.faults.push_back(std::move(f));
  }
}

bool Parser::ParseFaultKind(const std::vector<MapField>& fields, const YAML::Node& item,
                            const std::string& path, Fault* fault) {
  const MapField* kind = OneKind(fields, item, path, KindNames(), "a fault",
                                 "a fault needs exactly one kind: " + KindList());
  if (kind == nullptr) return false;
  const KindReader* reader = FindKindReader(kind->key);
  if (reader == nullptr) {
    Error(kind->key_node, Sub(path, kind->key),
          "fault kind " + Quoted(kind->key) + " is not supported by this controller");
    return false;
  }
  const size_t before = errors_.size();
  const std::string kpath = Sub(path, kind->key);
  FieldSources sources;
  sources.Note(kind->key, Pos(kind->value), kpath);
  KindReadContext ctx{*this, sources, target_names_, *fault};
  reader->read(ctx, kind->value, kpath);
  // The kind's rules run on what the YAML said only when the YAML itself read cleanly: a value
  // the reader already refused would otherwise be reported twice.
  if (errors_.size() != before) return false;
  faultspec::SpecValidationOptions options;
  options.partition_peers_added_later = !fault->partition_peer_targets.empty();
  faultspec::FieldProblems problems;
  faultspec::ValidateFaultSpec(fault->spec, options, &problems);
  for (const faultspec::FieldProblem& p : problems.problems()) {
    const FieldSources::Source* source = sources.Find(p.field);
    if (source != nullptr) {
      Error(source->pos, source->field, p.message);
    } else {
      Error(Pos(kind->value), kpath, p.ToString());
    }
  }
  return problems.ok();
}

ParseOutcome ParseExperimentText(std::string_view text, const std::string& filename) {
  return Parser(filename).Run(text);
}

ParseOutcome ParseExperimentFile(const std::string& path) {
  auto fail = [&](std::string message) {
    ParseOutcome out;
    out.errors.push_back({SourcePos{path, 0, 0}, "", std::move(message)});
    return out;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read experiment file " + path);
  std::string text;
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxExperimentFileBytes) {
      return fail("experiment file " + path + " is larger than 1 MiB");
    }
  }
  if (in.bad()) return fail("cannot read experiment file " + path);
  return ParseExperimentText(text, path);
}

}  // namespace faultline::experiment
