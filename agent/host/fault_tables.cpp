#include "agent/host/fault_tables.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "agent/host/deadman_switch.h"
#include "common/atomic_file.h"

namespace faultline::agent::host {
namespace {

constexpr const char* kRecordHeader = "faultline-table v1";

// The N of a "# handle N" in `line`, or 0.
uint64_t HandleIn(const std::string& line) {
  size_t at = line.rfind("# handle ");
  if (at == std::string::npos) return 0;
  try {
    return std::stoull(line.substr(at + 9));
  } catch (const std::exception&) {
    return 0;
  }
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

int NetBraces(const std::string& line) {
  int n = 0;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '{') ++n;
    if (c == '}') --n;
  }
  return n;
}

std::string Describe(const ListedObject& o) {
  return o.kind + " " + o.name + " (handle " + std::to_string(o.handle) + ")";
}

}  // namespace

Result<TableOwnership> OwnershipFromEcho(std::string_view family, std::string_view name,
                                         const std::string& echo) {
  TableOwnership owned{std::string(family), std::string(name), 0, 0};
  const std::string add_table = "add table " + owned.family + " " + owned.name + " ";
  std::istringstream lines(echo);
  std::string line;
  while (std::getline(lines, line)) {
    uint64_t h = HandleIn(line);
    if (h == 0) continue;
    if (line.rfind(add_table, 0) == 0) {
      owned.table_handle = h;  // the last one is the table that stays
      owned.max_handle = 0;    // objects of a table deleted in the same batch do not count
    } else {
      owned.max_handle = std::max(owned.max_handle, h);
    }
  }
  if (owned.table_handle == 0) {
    return Internal("nftables: no handle for table " + owned.name + " in nft's echo");
  }
  return owned;
}

Result<ListedTable> ParseTableListing(const std::string& listing) {
  ListedTable t;
  std::istringstream lines(listing);
  std::string raw;
  int depth = 0;
  std::string chain;  // the chain whose body we are in (depth 2)
  bool have_table = false;
  while (std::getline(lines, raw)) {
    const std::string line = Trim(raw);
    if (line.empty()) continue;
    const int before = depth;
    depth += NetBraces(line);
    if (before == 0 && line.rfind("table ", 0) == 0) {
      t.handle = HandleIn(line);
      have_table = t.handle != 0;
      continue;
    }
    if (before == 1) {
      // "<kind...> <name> { # handle N": kind is every word before the name.
      chain.clear();
      uint64_t h = HandleIn(line);
      size_t brace = line.find(" {");
      if (h == 0 || brace == std::string::npos) continue;
      std::string head = line.substr(0, brace);
      size_t sp = head.rfind(' ');
      if (sp == std::string::npos) continue;
      ListedObject o{head.substr(0, sp), head.substr(sp + 1), h};
      if (o.kind == "chain") chain = o.name;
      t.objects.push_back(std::move(o));
      continue;
    }
    if (before == 2 && !chain.empty()) {
      uint64_t h = HandleIn(line);
      if (h != 0) t.objects.push_back({"rule", chain, h});
    }
  }
  if (!have_table) return InvalidArgument("nftables: no table header with a handle in listing");
  return t;
}

RevertPlan PlanRevert(const TableOwnership& owned, const ListedTable& listed) {
  RevertPlan plan;
  if (listed.handle != owned.table_handle) {
    plan.not_ours = true;
    return plan;
  }
  const std::string ref = owned.family + " " + owned.name;
  for (const ListedObject& o : listed.objects) {
    if (o.handle > owned.max_handle) plan.foreign.push_back(o);
  }
  if (plan.foreign.empty()) {
    plan.whole_table = true;
    return plan;
  }
  for (const ListedObject& o : listed.objects) {
    if (o.handle > owned.max_handle) continue;
    if (o.kind == "rule") {
      plan.delete_rules +=
          "delete rule " + ref + " " + o.name + " handle " + std::to_string(o.handle) + "\n";
    }
  }
  // A chain holding someone else's rule stays: deleting a chain deletes the rules in it.
  std::set<std::string> foreign_rule_chains;
  for (const ListedObject& o : plan.foreign) {
    if (o.kind == "rule") foreign_rule_chains.insert(o.name);
  }
  // Chains first (a set is in use while a rule of a chain names it), then everything else; the
  // kernel refuses to delete a set or chain another rule still uses.
  for (const char* pass : {"chain", ""}) {
    for (const ListedObject& o : listed.objects) {
      if (o.handle > owned.max_handle || o.kind == "rule") continue;
      if ((o.kind == "chain") != (std::string(pass) == "chain")) continue;
      if (o.kind == "chain" && foreign_rule_chains.count(o.name) != 0) continue;
      plan.delete_each.push_back("delete " + o.kind + " " + ref + " handle " +
                                 std::to_string(o.handle) + "\n");
    }
  }
  return plan;
}

std::string FormatOwnership(const TableOwnership& o) {
  return std::string(kRecordHeader) + "\nfamily " + o.family + "\nname " + o.name + "\nhandle " +
         std::to_string(o.table_handle) + "\nmax_handle " + std::to_string(o.max_handle) + "\n";
}

Result<TableOwnership> ParseOwnership(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  if (!std::getline(lines, line) || line != kRecordHeader) {
    return InvalidArgument("table record: bad header");
  }
  TableOwnership o;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value)) continue;
    try {
      if (key == "family") o.family = value;
      if (key == "name") o.name = value;
      if (key == "handle") o.table_handle = std::stoull(value);
      if (key == "max_handle") o.max_handle = std::stoull(value);
    } catch (const std::exception&) {
      return InvalidArgument("table record: bad number in '" + line + "'");
    }
  }
  if (!IsValidNftFamily(o.family) || !IsValidNftIdentifier(o.name) || o.table_handle == 0) {
    return InvalidArgument("table record: incomplete");
  }
  return o;
}

FaultTables::FaultTables(std::shared_ptr<NftTables> nft, std::shared_ptr<DeadmanSwitch> deadman,
                         std::string record_dir)
    : nft_(std::move(nft)), deadman_(std::move(deadman)), record_dir_(std::move(record_dir)) {}

std::string FaultTables::RecordPath(std::string_view name) const {
  return record_dir_ + "/" + std::string(name) + ".table";
}

Status FaultTables::WriteRecord(const TableOwnership& owned) const {
  if (record_dir_.empty()) return Status::Ok();
  if (::mkdir(record_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Internal("table record: mkdir " + record_dir_ + ": " + strerror(errno));
  }
  if (Status s = WriteFileAtomically(RecordPath(owned.name), FormatOwnership(owned), 0600);
      !s.ok()) {
    return Internal("table record: " + s.message());
  }
  return Status::Ok();
}

Status FaultTables::RemoveRecord(std::string_view name) const {
  if (record_dir_.empty()) return Status::Ok();
  if (::unlink(RecordPath(name).c_str()) != 0 && errno != ENOENT) {
    return Internal("table record: cannot remove " + RecordPath(name) + ": " + strerror(errno));
  }
  return Status::Ok();
}

Result<TableOwnership> FaultTables::Create(std::string_view family, std::string_view name,
                                           const std::string& batch) {
  // The batch replaces a leftover of the same name (add + delete + add): only ever one of ours.
  auto present = nft_->ListTables(name);
  if (!present.ok()) return present.status();
  for (const NftTable& t : *present) {
    if (t.family != family || t.name != name) continue;
    if (Status s = RevertOrphan(family, name); !s.ok()) return s;
    auto still = nft_->ListTables(name);
    if (!still.ok()) return still.status();
    for (const NftTable& u : *still) {
      if (u.family == family && u.name == name) {
        return FailedPrecondition("nftables: a table " + std::string(family) + " " +
                                  std::string(name) +
                                  " exists that this agent did not create (or others use): "
                                  "not replaced");
      }
    }
  }
  auto echo = nft_->RunWithOutput(deadman_->Arm(batch, family, name), /*handles=*/true);
  if (!echo.ok()) return echo.status();
  auto owned = OwnershipFromEcho(family, name, *echo);
  Status s = owned.ok() ? WriteRecord(*owned) : owned.status();
  if (!s.ok()) {
    (void)nft_->DeleteTable(family, name);  // just made by us, in this call
    return s;
  }
  deadman_->Keep(family, name);
  return owned;
}

Status FaultTables::Revert(const TableOwnership& owned) {
  deadman_->Release(owned.family, owned.name);
  auto present = nft_->ListTables(owned.name);
  if (!present.ok()) {
    deadman_->Keep(owned.family, owned.name);
    return present.status();
  }
  const bool exists = std::any_of(present->begin(), present->end(), [&](const NftTable& t) {
    return t.family == owned.family && t.name == owned.name;
  });
  if (!exists) return RemoveRecord(owned.name);
  auto listing =
      nft_->RunWithOutput("list table " + owned.family + " " + owned.name, /*handles=*/true);
  if (!listing.ok()) {
    deadman_->Keep(owned.family, owned.name);
    return listing.status();
  }
  auto listed = ParseTableListing(*listing);
  if (!listed.ok()) {
    deadman_->Keep(owned.family, owned.name);
    return Internal(listed.status().message());
  }
  RevertPlan plan = PlanRevert(owned, *listed);
  if (plan.not_ours) {
    spdlog::warn(
        "nftables: table {} {} is not the one this agent created (handle {}, ours was "
        "{}): left alone",
        owned.family, owned.name, listed->handle, owned.table_handle);
    return RemoveRecord(owned.name);
  }
  const std::string ref = owned.family + " " + owned.name;
  if (plan.whole_table) {
    Status s = nft_->Run("delete table " + owned.family + " handle " +
                         std::to_string(owned.table_handle) + "\n");
    if (!s.ok()) {
      deadman_->Keep(owned.family, owned.name);
      return s;
    }
    return RemoveRecord(owned.name);
  }
  std::string foreign;
  for (const auto& o : plan.foreign) foreign += (foreign.empty() ? "" : ", ") + Describe(o);
  if (!plan.delete_rules.empty()) {
    if (Status s = nft_->Run(plan.delete_rules); !s.ok()) {
      deadman_->Keep(owned.family, owned.name);
      return s;
    }
  }
  std::string kept;
  for (const std::string& command : plan.delete_each) {
    if (Status s = nft_->Run(command); !s.ok()) {
      kept += (kept.empty() ? "" : "; ") + Trim(command.substr(0, command.size() - 1));
    }
  }
  spdlog::warn(
      "nftables: table {} holds objects this agent did not create ({}): deleted only the agent's "
      "own rules and what nobody else uses; the table stays{}",
      ref, foreign, kept.empty() ? "" : " (still in use, kept: " + kept + ")");
  return RemoveRecord(owned.name);
}

Status FaultTables::RevertOrphan(std::string_view family, std::string_view name) {
  if (!IsValidNftFamily(family) || !IsValidNftIdentifier(name)) {
    return InvalidArgument("nftables: invalid table " + std::string(family) + " " +
                           std::string(name));
  }
  std::string text;
  if (!record_dir_.empty()) {
    std::ifstream in(RecordPath(name));
    if (in) {
      std::stringstream buf;
      buf << in.rdbuf();
      text = buf.str();
    }
  }
  if (text.empty()) {
    auto present = nft_->ListTables(name);
    if (present.ok()) {
      for (const auto& t : *present) {
        if (t.family == family && t.name == name) {
          spdlog::warn("nftables: no record that this agent created table {} {}: left alone",
                       family, name);
        }
      }
    }
    return Status::Ok();
  }
  auto owned = ParseOwnership(text);
  if (!owned.ok() || owned->family != family || owned->name != name) {
    spdlog::warn("nftables: the record of table {} {} is unreadable: table left alone", family,
                 name);
    return RemoveRecord(name);
  }
  return Revert(*owned);
}

Result<std::vector<std::string>> FaultTables::Sweep(std::string_view prefix) {
  if (prefix.empty() || !IsValidNftIdentifier(prefix)) {
    return InvalidArgument("nftables: sweep prefix must be a valid identifier prefix");
  }
  auto tables = nft_->ListTables(prefix);
  if (!tables.ok()) return tables.status();
  std::vector<std::string> reverted;
  Status first;
  for (const auto& t : *tables) {
    if (record_dir_.empty()) break;
    std::ifstream in(RecordPath(t.name));
    if (!in) {
      spdlog::warn("sweep: table {} {} has no record of this agent: left alone", t.family, t.name);
      continue;
    }
    Status s = RevertOrphan(t.family, t.name);
    if (s.ok()) {
      reverted.push_back(t.name);
    } else if (first.ok()) {
      first = s;
    }
  }
  if (!first.ok()) return first;
  return reverted;
}

}  // namespace faultline::agent::host
