#pragma once
// FaultTables: the one way a backend creates and removes a fault's nft table.
//
// Create arms the batch with the dead-man switch (deadman_switch.h), runs it as one transaction
// with nft's echo, and records what it created: the table's kernel handle and the highest object
// handle of the batch (handles of a table's chains, sets, counters and rules come from one
// per-table counter, so anything added to the table later by someone else has a higher handle).
// The record is kept in memory (TableOwnership) and, with a record directory, on disk
// (<dir>/<table>.table, written atomically) for a revert after an agent crash.
//
// Revert deletes only what this agent created: nothing when the table of that name is not the
// one it created (other handle), the whole table (by handle) when nothing foreign was added, and
// otherwise only its own rules, then those of its chains and sets nobody else's rules still use;
// what stays is logged as a warning.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/host/nft_tables.h"
#include "common/status.h"

namespace faultline::agent::host {

class DeadmanSwitch;

// What one Create made.
struct TableOwnership {
  std::string family;
  std::string name;
  uint64_t table_handle = 0;  // the table's kernel handle
  uint64_t max_handle = 0;    // highest handle of an object the create batch added
  bool operator==(const TableOwnership&) const = default;
};

// From the echo (with handles) of a batch that created `family name`: the handle of the last
// `add table` of it and the highest object handle. INTERNAL when the echo has no table handle.
Result<TableOwnership> OwnershipFromEcho(std::string_view family, std::string_view name,
                                         const std::string& echo);

// One object of a listed table.
struct ListedObject {
  std::string kind;  // "chain", "set", "map", "counter", "ct helper", ..., or "rule"
  std::string name;  // object name; for a rule, its chain
  uint64_t handle = 0;
};
struct ListedTable {
  uint64_t handle = 0;
  std::vector<ListedObject> objects;  // in listing order
};
// Parses `list table FAMILY NAME` output printed with handles. INVALID_ARGUMENT when there is no
// table header with a handle.
Result<ListedTable> ParseTableListing(const std::string& listing);

// What a revert of `owned` does to `listed` (the same table, listed now). Pure.
struct RevertPlan {
  bool not_ours = false;                 // another table of that name: touch nothing
  bool whole_table = false;              // nothing foreign: `delete table F handle H`
  std::string delete_rules;              // one batch: every rule of ours
  std::vector<std::string> delete_each;  // then each chain, then each other object of ours,
                                         // one command each (a failure keeps that one)
  std::vector<ListedObject> foreign;     // objects added by someone else
};
RevertPlan PlanRevert(const TableOwnership& owned, const ListedTable& listed);

// The record file's text and its parser (INVALID_ARGUMENT when malformed).
std::string FormatOwnership(const TableOwnership& owned);
Result<TableOwnership> ParseOwnership(const std::string& text);

class FaultTables {
 public:
  // `record_dir` "" = no records on disk (RevertOrphan then leaves tables alone).
  FaultTables(std::shared_ptr<NftTables> nft, std::shared_ptr<DeadmanSwitch> deadman,
              std::string record_dir);

  const std::shared_ptr<NftTables>& nft() const { return nft_; }

  // Creates the table with `batch` (nft commands that create `family name`; validated names),
  // armed with the dead-man switch, records its ownership and keeps it alive. A leftover table of
  // that name is first reverted like an orphan (only when this agent's record says it made it).
  // FAILED_PRECONDITION when a table of that name remains that the agent did not create;
  // UNAVAILABLE with nft's error when the batch is rejected (nothing applied); INTERNAL when the
  // record cannot be written (the table is deleted again). Thread-safe.
  Result<TableOwnership> Create(std::string_view family, std::string_view name,
                                const std::string& batch);

  // Stops keeping the table alive and deletes what this agent created of it (see above), then
  // its record. Idempotent: OK when the table is gone. UNAVAILABLE when nft fails (the table is
  // kept alive again, so a retry finds it as it was). Thread-safe.
  Status Revert(const TableOwnership& owned);

  // Revert from the record on disk (after an agent crash). OK and nothing deleted when there is
  // no record: a table this agent cannot prove it created is left alone (logged).
  Status RevertOrphan(std::string_view family, std::string_view name);

  // At agent start: RevertOrphan of every table whose name starts with `prefix` (any family).
  // Returns the names of tables reverted; the first error after trying all of them.
  Result<std::vector<std::string>> Sweep(std::string_view prefix);

 private:
  std::string RecordPath(std::string_view name) const;
  Status WriteRecord(const TableOwnership& owned) const;
  Status RemoveRecord(std::string_view name) const;

  const std::shared_ptr<NftTables> nft_;
  const std::shared_ptr<DeadmanSwitch> deadman_;
  const std::string record_dir_;
};

}  // namespace faultline::agent::host
