#include "common/atomic_file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace faultline {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/atomic_file_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static void WriteRaw(const std::string& path, const std::string& content) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  }
  // Every name in the directory, sorted.
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

TEST_F(AtomicFileTest, WritesTheBytesWithExactlyTheModeWhateverTheUmask) {
  mode_t old_umask = ::umask(077);
  Status s = WriteFileAtomically(Path("ready"), std::string("a\0b\n", 4), 0644);
  ::umask(old_umask);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Read(Path("ready")), std::string("a\0b\n", 4));
  struct stat st {};
  ASSERT_EQ(::stat(Path("ready").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(AtomicFileTest, ReplacesTheOldContentAndLeavesNoTemporaryFile) {
  WriteRaw(Path("journal.pb"), "old content that is longer than the new one");
  ASSERT_TRUE(WriteFileAtomically(Path("journal.pb"), "new", 0600).ok());
  EXPECT_EQ(Read(Path("journal.pb")), "new");
  EXPECT_EQ(Names(), std::vector<std::string>{"journal.pb"});
  // Idempotent: the same bytes again give the same file.
  ASSERT_TRUE(WriteFileAtomically(Path("journal.pb"), "new", 0600).ok());
  EXPECT_EQ(Read(Path("journal.pb")), "new");
  EXPECT_EQ(Names(), std::vector<std::string>{"journal.pb"});
}

TEST_F(AtomicFileTest, ASymlinkAtTheTargetIsReplacedNotFollowed) {
  WriteRaw(Path("victim"), "secret");
  fs::create_symlink(Path("victim"), Path("target"));
  ASSERT_TRUE(WriteFileAtomically(Path("target"), "mine", 0644).ok());
  EXPECT_EQ(Read(Path("victim")), "secret");
  EXPECT_FALSE(fs::is_symlink(Path("target")));
  EXPECT_EQ(Read(Path("target")), "mine");
}

TEST_F(AtomicFileTest, ASymlinkPlantedAtAPredictableTemporaryNameIsNotFollowed) {
  // The copies this replaced wrote through "<path>.tmp" with O_TRUNC: a symlink there truncated
  // and overwrote whatever it pointed to.
  WriteRaw(Path("victim"), "secret");
  fs::create_symlink(Path("victim"), Path("target.tmp"));
  fs::create_symlink(Path("victim"), Path(".target.tmp"));
  ASSERT_TRUE(WriteFileAtomically(Path("target"), "mine", 0644).ok());
  EXPECT_EQ(Read(Path("victim")), "secret");
  EXPECT_EQ(Read(Path("target")), "mine");
}

TEST_F(AtomicFileTest, AFailedRenameLeavesTheTargetAndNoTemporaryFile) {
  fs::create_directory(Path("occupied"));
  WriteRaw(Path("occupied/keep"), "kept");
  Status s = WriteFileAtomically(Path("occupied"), "x", 0644);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find(Path("occupied")), std::string::npos) << s.message();
  EXPECT_EQ(Read(Path("occupied/keep")), "kept");
  EXPECT_EQ(Names(), std::vector<std::string>{"occupied"});
}

TEST_F(AtomicFileTest, AMissingDirectoryIsAnInternalErrorNamingThePath) {
  Status s = WriteFileAtomically(Path("no/such/dir/file"), "x", 0644);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find(Path("no/such/dir")), std::string::npos) << s.message();
}

TEST_F(AtomicFileTest, AnEmptyPathOrADirectoryPathIsInvalid) {
  EXPECT_EQ(WriteFileAtomically("", "x", 0644).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteFileAtomically(dir_ + "/", "x", 0644).code(), StatusCode::kInvalidArgument);
}

TEST_F(AtomicFileTest, AProcessKilledWhileWritingLeavesEitherTheOldOrTheNewContent) {
  // A writer alternates two large contents and is killed (SIGKILL: no cleanup) at an arbitrary
  // point, after some writes completed; whatever instant that is, the file holds one of them whole.
  const std::string a(1 << 20, 'a');
  const std::string b(1 << 20, 'b');
  ASSERT_TRUE(WriteFileAtomically(Path("state"), a, 0600).ok());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    for (int i = 0;; ++i) {
      if (!WriteFileAtomically(Path("state"), i % 2 == 0 ? b : a, 0600).ok()) _exit(1);
      if (::write(ready[1], "w", 1) != 1) _exit(1);
    }
  }
  ::close(ready[1]);
  char buf[3];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t n = ::read(ready[0], buf + got, sizeof(buf) - got);
    ASSERT_GT(n, 0) << "the writer failed";
    got += static_cast<size_t>(n);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::close(ready[0]);
  const std::string content = Read(Path("state"));
  EXPECT_TRUE(content == a || content == b) << "size " << content.size();
  // A temporary file the crash left behind does not stop the next write.
  ASSERT_TRUE(WriteFileAtomically(Path("state"), "after", 0600).ok());
  EXPECT_EQ(Read(Path("state")), "after");
}

TEST_F(AtomicFileTest, SyncDirectoryNamesAMissingDirectory) {
  EXPECT_TRUE(SyncDirectory(dir_).ok());
  Status s = SyncDirectory(Path("missing"));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find(Path("missing")), std::string::npos);
}

}  // namespace
}  // namespace faultline
