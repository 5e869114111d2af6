#include "controller/experiment/kinds/kind_reader.h"

namespace faultline::experiment {

// KindReaders() is generated from the kind folders (cmake/fault_kinds.cmake).
const KindReader* FindKindReader(std::string_view kind) {
  for (const KindReader& r : KindReaders()) {
    if (r.kind == kind) return &r;
  }
  return nullptr;
}

void FieldSources::Note(std::string proto_path, SourcePos pos, std::string yaml_field) {
  sources_[std::move(proto_path)] = Source{std::move(pos), std::move(yaml_field)};
}

const FieldSources::Source* FieldSources::Find(std::string_view proto_path) const {
  std::string_view p = proto_path;
  while (!p.empty()) {
    if (auto it = sources_.find(p); it != sources_.end()) return &it->second;
    size_t cut = p.find_last_of(".[");
    if (cut == std::string_view::npos) break;
    p = p.substr(0, cut);
  }
  return nullptr;
}

const YAML::Node* KindReadContext::Field(const std::vector<MapField>& fields, const YAML::Node& map,
                                         const std::string& yaml_path, std::string_view key,
                                         const std::string& proto_path) {
  const YAML::Node* v = YamlReader::Find(fields, key);
  const std::string yaml_field = YamlReader::Sub(yaml_path, key);
  sources.Note(proto_path, yaml.Pos(v != nullptr ? *v : map), yaml_field);
  if (v == nullptr || v->IsNull()) return nullptr;
  return v;
}

void KindReadContext::Note(const std::string& proto_path, const YAML::Node& n,
                           const std::string& yaml_field) {
  sources.Note(proto_path, yaml.Pos(n), yaml_field);
}

bool KindReadContext::Strings(const YAML::Node& n, const std::string& yaml_path,
                              const std::string& proto_path, const std::string& what,
                              google::protobuf::RepeatedPtrField<std::string>* out) {
  Note(proto_path, n, yaml_path);
  if (!n.IsSequence()) {
    yaml.Error(n, yaml_path, "expected a list of " + what + ", got " + KindOf(n));
    return false;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string item_path = YamlReader::Index(yaml_path, i);
    auto s = yaml.String(item, item_path);
    if (!s) continue;
    Note(proto_path + "[" + std::to_string(out->size()) + "]", item, item_path);
    out->Add(std::string(*s));
  }
  return true;
}

}  // namespace faultline::experiment
