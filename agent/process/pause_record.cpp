#include "agent/process/pause_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"

namespace faultline::agent::process {
namespace {

constexpr char kHeader[] = "faultline-process-pause v1";

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

std::string FormatPauseRecord(const PauseRecord& record) {
  std::string out = std::string(kHeader) + "\n";
  if (!record.frozen_cgroup_dir.empty()) out += "frozen " + record.frozen_cgroup_dir + "\n";
  for (const PausedProcess& p : record.processes) {
    out += "pid " + std::to_string(p.pid) + " " + std::to_string(p.start_time) + "\n";
  }
  return out;
}

Result<PauseRecord> ParsePauseRecord(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  if (!std::getline(lines, line) || line != kHeader) {
    return InvalidArgument("not a process pause record (bad header)");
  }
  PauseRecord record;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.rfind("frozen /", 0) == 0) {
      record.frozen_cgroup_dir = line.substr(7);
      continue;
    }
    std::istringstream words(line);
    std::string keyword, extra;
    long long pid = 0;
    unsigned long long start = 0;
    if (!(words >> keyword >> pid >> start) || keyword != "pid" || (words >> extra) || pid <= 1 ||
        pid > 0x7fffffff) {
      return InvalidArgument("malformed line in process pause record: '" + line + "'");
    }
    record.processes.push_back({static_cast<int>(pid), static_cast<uint64_t>(start)});
  }
  return record;
}

std::string PauseRecordStore::PathOf(const std::string& fault_id) const {
  return dir_ + "/" + fault_id + ".paused";
}

Status PauseRecordStore::SyncDir() const { return SyncDirectory(dir_); }

Status PauseRecordStore::Write(const std::string& fault_id, const PauseRecord& record) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Internal("cannot create " + dir_ + ": " + ec.message());
  ::chmod(dir_.c_str(), 0700);
  const std::string path = PathOf(fault_id);
  return WriteFileAtomically(path, FormatPauseRecord(record), 0600);
}

Result<std::optional<PauseRecord>> PauseRecordStore::Read(const std::string& fault_id) const {
  const std::string path = PathOf(fault_id);
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT || !std::filesystem::exists(path)) return std::optional<PauseRecord>();
    return Internal(Errno("cannot read " + path));
  }
  std::stringstream text;
  text << in.rdbuf();
  Result<PauseRecord> record = ParsePauseRecord(text.str());
  if (!record.ok()) return Internal(path + ": " + record.status().message());
  return std::optional<PauseRecord>(std::move(record).value());
}

Status PauseRecordStore::Remove(const std::string& fault_id) const {
  const std::string path = PathOf(fault_id);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Internal(Errno("cannot remove " + path));
  }
  return SyncDir();
}

}  // namespace faultline::agent::process
