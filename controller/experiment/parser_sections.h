#pragma once
// The experiment parser's sections (internal to controller/experiment): one Parser per file,
// built on the generic YamlReader. parser.cpp reads the document, metadata, targets and faults
// (each fault kind through its reader in kinds/, then common/faultspec's rules);
// probe_reader.cpp reads probes, steady state, objectives and abort conditions.

#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "controller/experiment/experiment.h"
#include "controller/experiment/parser.h"
#include "controller/experiment/yaml_reader.h"

namespace faultline::experiment {

class Parser : public YamlReader {
 public:
  explicit Parser(std::string file) : YamlReader(std::move(file)) {}

  // Parses `text`; see ParseExperimentText.
  ParseOutcome Run(std::string_view text);

 private:
  void ParseMetadata(const YAML::Node& n);
  void ParseTargets(const YAML::Node& n);
  // `targets.X.workloads` → a selector checked by faultspec::ValidateWorkloadSelector, its
  // problems reported at the YAML they came from.
  faultline::v1::WorkloadSelector ParseWorkloads(const YAML::Node& n, const std::string& path);
  void ParseFaults(const YAML::Node& n);
  // The kind of fault `item` (at `path`) from `fields`, read by the kind's reader and checked by
  // common/faultspec; false when it has an error.
  bool ParseFaultKind(const std::vector<MapField>& fields, const YAML::Node& item,
                      const std::string& path, Fault* fault);
  void ParseProbes(const YAML::Node& n);
  void ParseProbe(const YAML::Node& n, const std::string& path);
  // The grpc_health / prometheus probe blocks (fields `kf` of the mapping `kn` at `kpath`).
  void ParseGrpcHealth(const YAML::Node& kn, const std::string& kpath,
                       const std::vector<MapField>& kf, Probe* p);
  void ParsePrometheusProbe(const YAML::Node& kn, const std::string& kpath,
                            const std::vector<MapField>& kf, Probe* p);
  // A Prometheus server's base URL (trailing '/' removed), or nullopt after reporting an error.
  std::optional<std::string> PrometheusUrl(const YAML::Node& n, const std::string& field);
  void ParseSteadyState(const YAML::Node& n);
  void ParseObjectives(const YAML::Node& n);
  // `objectives[i].latency`: percentile, below, min_samples.
  void ParseLatencyObjective(const YAML::Node& n, const std::string& path, LatencyObjective* l);
  void ParseAborts(const YAML::Node& n);
  void CrossChecks(const YAML::Node& root);

  Experiment exp_;
  // Names declared, even by entries that failed validation, so that a broken declaration does not
  // also produce "unknown name" errors at every reference.
  std::set<std::string> target_names_;
  std::set<std::string> probe_names_;
  std::optional<YAML::Node> max_duration_node_;
};

}  // namespace faultline::experiment
