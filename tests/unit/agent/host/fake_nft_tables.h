#pragma once
// A fake NftTables for backend and host-layer tests without root. It records every batch, keeps
// the tables that `add table` / `delete table` make and remove, gives each added object a handle
// (like the kernel: one counter per table, tables from a global one), echoes batches with those
// handles and lists a tracked table with its handle. `outputs` overrides the answer to a command
// by its first line.

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "agent/host/nft_tables.h"

namespace faultline::agent::host {

class FakeNftTables : public NftTables {
 public:
  Status Run(const std::string& commands) override { return RunWithOutput(commands).status(); }

  Result<std::string> RunWithOutput(const std::string& commands, bool handles = false) override {
    batches.push_back(commands);
    if (fail_next) {
      fail_next = false;
      return Unavailable("nftables: scripted failure");
    }
    std::string echo;
    std::istringstream lines(commands);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream w(line);
      std::string verb, what, family, name;
      w >> verb >> what >> family >> name;
      if (what == "table" && verb == "add") {
        Table& t = tables_[family + " " + name];
        if (t.handle == 0) t.handle = ++table_handles_;
        echo += line + " # handle " + std::to_string(t.handle) + "\n";
      } else if (what == "table" && verb == "delete") {
        if (name == "handle") {
          std::erase_if(tables_, [&](const auto& kv) {
            return kv.first.rfind(family + " ", 0) == 0 &&
                   std::to_string(kv.second.handle) == line.substr(line.rfind(' ') + 1);
          });
        } else {
          tables_.erase(family + " " + name);
        }
      } else if (what == "table" && verb == "list" && handles) {
        auto t = tables_.find(family + " " + name);
        if (t != tables_.end()) {
          echo += "table " + family + " " + name + " { # handle " +
                  std::to_string(t->second.handle) + "\n}\n";
        }
      } else if (verb == "add" && what != "element") {
        Table& t = tables_[family + " " + name];
        echo += line + " # handle " + std::to_string(++t.objects) + "\n";
      }
    }
    auto it = outputs.find(commands.substr(0, commands.find('\n')));
    if (it != outputs.end()) return it->second;
    return echo;
  }

  Result<std::vector<NftTable>> ListTables(std::string_view prefix) override {
    std::vector<NftTable> out;
    for (const auto& [key, t] : tables_) {
      NftTable nt{key.substr(0, key.find(' ')), key.substr(key.find(' ') + 1)};
      if (nt.name.compare(0, prefix.size(), prefix) == 0) out.push_back(nt);
    }
    return out;
  }

  Status DeleteTable(std::string_view family, std::string_view name) override {
    return Run("delete table " + std::string(family) + " " + std::string(name) + "\n");
  }

  bool HasTable(const std::string& family, const std::string& name) const {
    return tables_.count(family + " " + name) != 0;
  }
  // A table made by someone else.
  void AddForeignTable(const std::string& family, const std::string& name) {
    (void)Run("add table " + family + " " + name + "\n");
  }

  std::vector<std::string> batches;
  std::map<std::string, std::string> outputs;
  bool fail_next = false;

 private:
  struct Table {
    uint64_t handle = 0;
    uint64_t objects = 0;
  };
  std::map<std::string, Table> tables_;  // "family name"
  uint64_t table_handles_ = 0;
};

}  // namespace faultline::agent::host
