#include "agent/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/atomic_file.h"
#include "common/ids.h"

namespace faultline::agent {
namespace {

namespace fs = std::filesystem;

constexpr char kSuffix[] = ".pb";

std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Journal::Journal(std::string dir, JournalOptions options)
    : dir_(std::move(dir)),
      deadline_(options.deadline),
      pool_(options.pool ? std::move(options.pool)
                         : std::make_shared<host::HostCallPool>(
                               host::HostCallPoolOptions{.name = "journal", .max_workers = 4})) {}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir, JournalOptions options) {
  if (dir.empty()) return InvalidArgument("journal directory must not be empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create journal directory " + dir + ": " + ec.message());
  if (!fs::is_directory(dir, ec)) return Internal("journal path " + dir + " is not a directory");
  // The journal describes kernel state an attacker could learn from; keep it to root.
  ::chmod(dir.c_str(), 0700);
  // Normalised so Quarantine can compare parent paths ("/a/b/" and "/a/b" are one directory).
  std::string normal = fs::path(dir).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return std::unique_ptr<Journal>(new Journal(normal, std::move(options)));
}

std::string Journal::PathOf(const std::string& fault_id) const {
  return dir_ + "/" + fault_id + kSuffix;
}

Status Journal::Record(const v1::ApplyFaultRequest& request) {
  if (!IsValidFaultId(request.fault_id())) {
    return InvalidArgument("journal: invalid fault id '" + request.fault_id() + "'");
  }
  std::string data;
  if (!request.SerializeToString(&data)) {
    return Internal("journal: cannot serialize fault " + request.fault_id());
  }
  // The journal describes kernel state an attacker could learn from; keep it to root.
  // The call owns copies of what it uses: it may outlive this journal if the disk hangs.
  Status written = host::CallWithDeadline(
      *pool_, "journal: writing the record of fault " + request.fault_id(), deadline_,
      [path = PathOf(request.fault_id()), data = std::move(data)] {
        return WriteFileAtomically(path, data, 0600);
      });
  if (!written.ok() && written.message().rfind("journal: ", 0) != 0) {
    return Status(written.code(), "journal: " + written.message());
  }
  return written;
}

Status Journal::Remove(const std::string& fault_id) {
  if (!IsValidFaultId(fault_id)) {
    return InvalidArgument("journal: invalid fault id '" + fault_id + "'");
  }
  return host::CallWithDeadline(*pool_, "journal: removing the record of fault " + fault_id,
                                deadline_, [path = PathOf(fault_id), dir = dir_]() -> Status {
                                  if (::unlink(path.c_str()) != 0) {
                                    if (errno == ENOENT) return Status::Ok();
                                    return Internal(ErrnoText("journal: cannot remove", path));
                                  }
                                  return SyncDirectory(dir);
                                });
}

JournalContents Journal::LoadAll() const {
  JournalContents contents;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) {
    contents.problems.push_back({dir_, "cannot list journal directory: " + ec.message()});
    return contents;
  }
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    if (!EndsWith(name, kSuffix)) continue;  // temporaries, quarantined files
    const std::string path = entry.path().string();
    const std::string expected_id = name.substr(0, name.size() - std::strlen(kSuffix));
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      contents.problems.push_back({path, std::string("cannot open: ") + std::strerror(errno)});
      continue;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) {
      contents.problems.push_back({path, "read error"});
      continue;
    }
    v1::ApplyFaultRequest request;
    if (!request.ParseFromString(buffer.str())) {
      contents.problems.push_back({path, "not a valid ApplyFaultRequest record"});
      continue;
    }
    if (request.fault_id() != expected_id || !IsValidFaultId(request.fault_id())) {
      contents.problems.push_back(
          {path, "record names fault id '" + request.fault_id() + "', not '" + expected_id + "'"});
      continue;
    }
    if (request.spec().kind_case() == v1::FaultSpec::KIND_NOT_SET) {
      contents.problems.push_back({path, "record has no fault spec"});
      continue;
    }
    contents.entries.push_back(std::move(request));
  }
  std::sort(contents.entries.begin(), contents.entries.end(),
            [](const auto& a, const auto& b) { return a.fault_id() < b.fault_id(); });
  return contents;
}

Status Journal::Quarantine(const std::string& path) {
  fs::path p(path);
  if (p.parent_path() != fs::path(dir_)) {
    return InvalidArgument("journal: " + path + " is not a journal file of " + dir_);
  }
  return host::CallWithDeadline(*pool_, "journal: quarantining " + path, deadline_,
                                [path, dir = dir_]() -> Status {
                                  std::error_code ec;
                                  if (!fs::exists(path, ec)) return Status::Ok();
                                  const std::string target = path + ".corrupt";
                                  if (::rename(path.c_str(), target.c_str()) != 0) {
                                    return Internal(ErrnoText("journal: cannot quarantine", path));
                                  }
                                  return SyncDirectory(dir);
                                });
}

}  // namespace faultline::agent
