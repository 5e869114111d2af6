#include "common/process.h"

#include <boost/asio/io_context.hpp>
#include <boost/process.hpp>
#include <future>

namespace faultline {

namespace bp = boost::process;

std::string ArgvToString(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) {
  if (argv.empty()) return InvalidArgument("empty command");
  boost::filesystem::path exe = argv[0];
  if (argv[0].find('/') == std::string::npos) {
    exe = bp::search_path(argv[0]);
    if (exe.empty()) return NotFound("program '" + argv[0] + "' not found in PATH");
  }
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  ProcessResult r;
  try {
    boost::asio::io_context ios;
    std::future<std::string> out, err;
    bp::child child(bp::exe = exe, bp::args = args, bp::std_in.close(), bp::std_out > out,
                    bp::std_err > err, ios);
    // run_for returns early once both pipes reach EOF (the child closed them, normally by exiting).
    ios.run_for(timeout);
    if (!ios.stopped()) {
      r.timed_out = true;
      std::error_code ec;
      child.terminate(ec);
      ios.run_for(std::chrono::milliseconds(500));
    }
    std::error_code ec;
    child.wait(ec);
    if (out.wait_for(std::chrono::seconds(0)) == std::future_status::ready) r.out = out.get();
    if (err.wait_for(std::chrono::seconds(0)) == std::future_status::ready) r.err = err.get();
    r.exit_code = r.timed_out ? -1 : child.exit_code();
    int native = child.native_exit_code();
    if (!r.timed_out && WIFSIGNALED(native)) r.exit_code = -1;
  } catch (const std::exception& e) {
    return Internal("cannot run '" + ArgvToString(argv) + "': " + e.what());
  }
  return r;
}

Status RunChecked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  auto r = RunProcess(argv, timeout);
  if (!r.ok()) return r.status();
  if (r->timed_out) return DeadlineExceeded("'" + ArgvToString(argv) + "' timed out");
  if (r->exit_code != 0) {
    std::string err = r->err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Internal("'" + ArgvToString(argv) + "' exited " + std::to_string(r->exit_code) +
                    (err.empty() ? "" : ": " + err));
  }
  return Status::Ok();
}

}  // namespace faultline
