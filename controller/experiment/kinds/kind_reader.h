#pragma once
// Per-kind readers of the experiment parser (internal to controller/experiment): each turns the
// YAML of one fault kind (`dns:`, `network:`, ...) into that kind's proto message. A reader
// checks only what YAML can get wrong (types, units, enum words, required keys); the kind's
// rules are common/faultspec's, which the parser applies to the finished FaultSpec and maps back
// to the YAML through the FieldSources the reader filled in.

#include <yaml-cpp/yaml.h>

#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "controller/experiment/experiment.h"
#include "controller/experiment/yaml_reader.h"

namespace faultline::experiment {

// Where each field of a fault's proto came from: proto field path ("dns.spoof_addresses[2]",
// as common/faultspec names it) → position and YAML field path ("faults[0].dns.addresses[2]").
class FieldSources {
 public:
  struct Source {
    SourcePos pos;
    std::string field;
  };
  // Records (or replaces) the source of `proto_path`.
  void Note(std::string proto_path, SourcePos pos, std::string yaml_field);
  // The source of `proto_path`, or of its nearest recorded ancestor ("dns.domains[3]" →
  // "dns.domains" → "dns"); nullptr when none is recorded.
  const Source* Find(std::string_view proto_path) const;

 private:
  std::map<std::string, Source, std::less<>> sources_;
};

// What a kind reader works with.
struct KindReadContext {
  YamlReader& yaml;
  FieldSources& sources;
  // Target groups the experiment declares (a partition may name them).
  const std::set<std::string>& target_names;
  Fault& fault;

  // The value of `key` in `fields` (nullptr when absent or null). Notes `proto_path` as coming
  // from that value, or from the mapping `map` when the key is absent, with YAML field
  // `yaml_path`.`key`: the place a problem with that proto field is reported.
  const YAML::Node* Field(const std::vector<MapField>& fields, const YAML::Node& map,
                          const std::string& yaml_path, std::string_view key,
                          const std::string& proto_path);
  // Notes `proto_path` as coming from node `n` (YAML field `yaml_field`).
  void Note(const std::string& proto_path, const YAML::Node& n, const std::string& yaml_field);
  // A list of strings into `out`, noting the list and each element. False (after an error) when
  // `n` is not a list; a non-string element is reported and skipped.
  bool Strings(const YAML::Node& n, const std::string& yaml_path, const std::string& proto_path,
               const std::string& what, google::protobuf::RepeatedPtrField<std::string>* out);
};

// Reads the kind's YAML `n` (at YAML path `path`) into ctx.fault.spec.
using KindReadFn = void (*)(KindReadContext& ctx, const YAML::Node& n, const std::string& path);

// One line per fault kind the parser reads; `kind` is common/faultspec's kind name, which is
// also the YAML key.
struct KindReader {
  std::string_view kind;
  KindReadFn read;
};
std::span<const KindReader> KindReaders();
const KindReader* FindKindReader(std::string_view kind);

// The kinds' readers (kinds/<kind>_reader.cpp).
void ReadDnsFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path);
void ReadNetworkFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path);
void ReadDependencyFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path);
void ReadProcessFault(KindReadContext& ctx, const YAML::Node& n, const std::string& path);

// A NetworkSelector (`match:` of network and dependency faults); `proto_path` is its proto path
// ("network.match").
void ReadNetworkSelector(KindReadContext& ctx, const YAML::Node& n, const std::string& path,
                         const std::string& proto_path, faultline::v1::NetworkSelector* m);

}  // namespace faultline::experiment
