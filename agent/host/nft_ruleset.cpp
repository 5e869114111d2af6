#include "agent/host/nft_ruleset.h"

#include <nftables/libnftables.h>

#include <array>
#include <map>
#include <mutex>
#include <sstream>

namespace faultline::agent::host {
namespace {

bool IsLowerAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsIdentChar(char c) { return IsLowerAlpha(c) || (c >= '0' && c <= '9') || c == '_'; }

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

bool IsValidNftIdentifier(std::string_view name) {
  if (name.empty() || name.size() > 64 || !IsLowerAlpha(name[0])) return false;
  for (char c : name) {
    if (!IsIdentChar(c)) return false;
  }
  return true;
}

bool IsValidNftFamily(std::string_view family) {
  static constexpr std::array<std::string_view, 6> kFamilies = {"ip",  "ip6",    "inet",
                                                                "arp", "bridge", "netdev"};
  for (auto f : kFamilies) {
    if (f == family) return true;
  }
  return false;
}

// The libnftables context is made on first use: a process that never runs a command (a dry-run
// agent, a backend whose kind is never applied) pays neither its start-up work nor its memory.
// Owned jointly by the ruleset and its running transactions, so a transaction that overran its
// deadline still has its context when it returns after the ruleset is gone.
struct NftRuleset::Context {
  std::mutex mu;
  nft_ctx* ctx = nullptr;  // guarded by mu

  ~Context() {
    if (ctx != nullptr) nft_ctx_free(ctx);
  }

  Result<std::string> Run(const std::string& commands, bool handles) {
    std::lock_guard lock(mu);
    if (ctx == nullptr) {
      ctx = nft_ctx_new(NFT_CTX_DEFAULT);
      if (ctx == nullptr) return Internal("libnftables: nft_ctx_new failed");
      // Buffered so that output and errors come back to us instead of going to stdout/stderr.
      nft_ctx_buffer_output(ctx);
      nft_ctx_buffer_error(ctx);
    }
    nft_ctx_output_set_flags(ctx, handles ? (NFT_CTX_OUTPUT_HANDLE | NFT_CTX_OUTPUT_ECHO) : 0);
    int rc = nft_run_cmd_from_buffer(ctx, commands.c_str());
    // The buffers are reset by the next run, so copy them now.
    const char* out = nft_ctx_get_output_buffer(ctx);
    const char* err = nft_ctx_get_error_buffer(ctx);
    std::string output = out != nullptr ? out : "";
    std::string error = err != nullptr ? Trim(err) : "";
    if (rc != 0) {
      if (error.empty()) error = "nft_run_cmd_from_buffer returned " + std::to_string(rc);
      return Unavailable("nftables: " + error);
    }
    return output;
  }
};

NftRuleset::NftRuleset(NftRulesetOptions options)
    : context_(std::make_shared<Context>()),
      deadline_(options.deadline),
      pool_(options.pool ? std::move(options.pool)
                         : std::make_shared<HostCallPool>(
                               HostCallPoolOptions{.name = "nftables", .max_workers = 4})) {}

NftRuleset::~NftRuleset() = default;

Result<std::string> NftRuleset::RunOnWorker(const std::string& commands, bool handles) {
  std::string first = commands.substr(0, commands.find_first_of(";\n"));
  if (first.size() > 80) first = first.substr(0, 80) + "...";
  return CallWithDeadline<std::string>(
      *pool_, "nftables transaction '" + first + "'", deadline_,
      [context = context_, commands, handles] { return context->Run(commands, handles); });
}

Status NftRuleset::Run(const std::string& commands) {
  return RunOnWorker(commands, false).status();
}

Result<std::string> NftRuleset::RunWithOutput(const std::string& commands, bool handles) {
  return RunOnWorker(commands, handles);
}

Result<std::vector<NftTable>> NftRuleset::ListTables(std::string_view name_prefix) {
  auto out = RunWithOutput("list tables");
  if (!out.ok()) return out.status();
  // Output lines look like "table inet faultline_abc".
  std::vector<NftTable> tables;
  std::istringstream lines(*out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string keyword;
    NftTable t;
    if (!(words >> keyword >> t.family >> t.name) || keyword != "table") continue;
    if (t.name.compare(0, name_prefix.size(), name_prefix) != 0) continue;
    tables.push_back(std::move(t));
  }
  return tables;
}

Status NftRuleset::DeleteTable(std::string_view family, std::string_view name) {
  if (!IsValidNftFamily(family)) {
    return InvalidArgument("nftables: invalid family '" + std::string(family) + "'");
  }
  if (!IsValidNftIdentifier(name)) {
    return InvalidArgument("nftables: invalid table name '" + std::string(name) + "'");
  }
  // "add" of an existing table is a no-op, so this batch deletes the table whether or not it
  // existed, atomically; nft 1.0.6 has no "destroy" command.
  std::string t = std::string(family) + " " + std::string(name);
  return Run("add table " + t + "\ndelete table " + t + "\n");
}

std::map<std::string, NftCounter> ParseNftCounters(const std::string& listing) {
  // Lines: "counter NAME {" then "packets P bytes B" (nft's default output).
  std::map<std::string, NftCounter> out;
  std::istringstream lines(listing);
  std::string line, current;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string w1, w2, w3, w4;
    words >> w1 >> w2;
    if (w1 == "counter" && !w2.empty() && line.find('{') != std::string::npos) {
      current = w2;
      // "counter NAME { packets P bytes B }" on one line (some output modes).
      size_t at = line.find("packets");
      if (at == std::string::npos) continue;
      std::istringstream rest(line.substr(at));
      rest >> w1 >> w2 >> w3 >> w4;
    } else if (w1 == "packets") {
      words >> w3 >> w4;
    } else {
      continue;
    }
    if (current.empty() || w1 != "packets" || w3 != "bytes") continue;
    try {
      out[current] = {std::stoull(w2), std::stoull(w4)};
    } catch (const std::exception&) {
    }
    current.clear();
  }
  return out;
}

}  // namespace faultline::agent::host
