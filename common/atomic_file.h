#pragma once
// Durable, all-or-nothing file replacement: the one implementation of "write a temporary file,
// fsync it, rename it over the target, fsync the directory" that journals, pause records, ready
// files, certificates and reports share.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace faultline {

// Replaces the file at `path` with `bytes` so that a reader, or the file system after a crash or
// power loss at any instant, sees either the previous content or all of `bytes`, never a mix.
//
// How: a new temporary file is created exclusively next to `path` (O_CREAT|O_EXCL|O_NOFOLLOW|
// O_CLOEXEC, a random name starting with "." and the target's name), given exactly `mode`
// (fchmod, so the umask does not narrow or widen it), written in full, fsynced, renamed over
// `path`, and the directory is fsynced so the rename itself is durable.
//
// Symlinks are never followed: a symlink at `path` is replaced by the new regular file (the file it
// pointed to is untouched), and an existing file or symlink can never be used as the temporary
// file. The directory of `path` must exist.
//
// Idempotent: writing the same bytes again leaves the same file. On any error the temporary file
// is removed and `path` is left as it was (except when only the final directory fsync fails: the
// new content is then in place but may not survive a crash).
// Errors: kInvalidArgument for an empty path or one that ends in '/'; kInternal (with the errno
// text and the path) for every I/O error.
// Thread-safe; concurrent writers of one path each write a whole file, and the last rename wins.
Status WriteFileAtomically(const std::string& path, std::string_view bytes, mode_t mode);

// fsyncs the directory `dir`, so that a rename, link or unlink in it survives a crash.
// Idempotent. Errors: kInternal (errno text and path) when it cannot be opened or synced.
// Thread-safe.
Status SyncDirectory(const std::string& dir);

// The whole content of the regular file at `path`, at most `max_bytes`. NOT_FOUND when it does
// not exist or cannot be opened (the message names the path and errno text); INVALID_ARGUMENT
// when it is larger than `max_bytes`; INTERNAL for read errors. Thread-safe.
Result<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 16 << 20);

}  // namespace faultline
