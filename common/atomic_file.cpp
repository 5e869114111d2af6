#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/ids.h"

namespace faultline {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path) {
  return Internal(what + " " + path + ": " + std::strerror(errno));
}

// Writes all of `bytes`, resuming after short writes and EINTR.
bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir);
  // The rename is only durable once the directory entry itself reaches the disk.
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    return ErrnoStatus("cannot fsync directory", dir);
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes, mode_t mode) {
  if (path.empty() || path.back() == '/') {
    return InvalidArgument("cannot write '" + path + "': not a file path");
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::string prefix = (dir == "/" ? "" : dir) + "/." + base + ".tmp-";

  // O_EXCL never opens an existing file and, with O_CREAT, never follows a symlink at the temporary
  // name; a random name makes a collision (a leftover from a crash, a concurrent writer) rare,
  // and it is retried.
  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    temp = prefix + NewRunId();  // 12 random hex digits
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST) return ErrnoStatus("cannot create", temp);
  }
  if (fd < 0) return ErrnoStatus("cannot create a temporary file for", path);

  auto fail = [&](const char* what, const std::string& subject) {
    Status error = ErrnoStatus(what, subject);
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    return error;
  };
  // The umask may have narrowed the mode at creation.
  if (::fchmod(fd, mode) != 0) return fail("cannot set the mode of", temp);
  if (!WriteAll(fd, bytes)) return fail("cannot write", temp);
  if (::fsync(fd) != 0) return fail("cannot fsync", temp);
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) return fail("cannot close", temp);
  // rename replaces a symlink at `path` itself, never the file it points to.
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail("cannot rename over", path);
  return SyncDirectory(dir);
}

Result<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = ErrnoStatus("cannot read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return InvalidArgument(path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

}  // namespace faultline
