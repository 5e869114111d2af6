// AlertWatch against a local stand-in for Prometheus's /api/v1/alerts whose answer the test
// switches. Synchronised on the server's request count: when request N+1 arrives, the watch has
// finished with answer N (it polls one request at a time).
#include "controller/probes/alert_watch.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "controller/probes/probe_runner.h"

namespace faultline::probes {
namespace {

using namespace std::chrono_literals;

class FakeAlerts {
 public:
  FakeAlerts() {
    server_.Get("/api/v1/alerts", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu_);
      ++requests_;
      cv_.notify_all();
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeAlerts() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Sets the answer, then waits until two more requests have arrived: the first of them may
  // have been answered before the switch, the second proves the watch has processed the first.
  void AnswerAndAwaitTwoPolls(const std::string& alerts) {
    std::unique_lock lock(mu_);
    body_ = R"({"status":"success","data":{"alerts":[)" + alerts + "]}}";
    int target = requests_ + 2;
    cv_.wait(lock, [&] { return requests_ >= target; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int requests_ = 0;
  std::string body_ = R"({"status":"success","data":{"alerts":[]}})";
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

std::string Alert(const std::string& name, const std::string& state) {
  return R"({"labels":{"alertname":")" + name + R"("},"state":")" + state + R"("})";
}

TEST(AlertWatchTest, OnlyTheWatchedAlertFiringCounts) {
  InitProbes();
  FakeAlerts server;
  experiment::AbortCondition c;
  c.prometheus_alert = "OrdersErrorRatioHigh";
  c.prometheus_url = server.Url();
  c.alert_interval = 100ms;
  experiment::AbortCondition probe_condition;
  probe_condition.probe = "orders-api";
  AlertWatch watch({probe_condition, c});
  ASSERT_FALSE(watch.empty());
  watch.Start();

  server.AnswerAndAwaitTwoPolls("");
  EXPECT_FALSE(watch.Firing());
  // Pending (inside its `for:`) and another alert firing: not a reason to abort.
  server.AnswerAndAwaitTwoPolls(Alert("OrdersErrorRatioHigh", "pending") + "," +
                                Alert("SomethingElse", "firing"));
  EXPECT_FALSE(watch.Firing());
  server.AnswerAndAwaitTwoPolls(Alert("OrdersErrorRatioHigh", "firing"));
  ASSERT_TRUE(watch.Firing());
  EXPECT_EQ(*watch.Firing(),
            "abort condition: Prometheus alert OrdersErrorRatioHigh firing (" + server.Url() + ")");
  // Once seen firing, it stays the reason even when the alert resolves.
  server.AnswerAndAwaitTwoPolls("");
  EXPECT_TRUE(watch.Firing());
  watch.Stop();
  watch.Stop();  // idempotent
}

TEST(AlertWatchTest, AnUnreachableServerIsAnErrorNotAnAbort) {
  InitProbes();
  experiment::AbortCondition c;
  c.prometheus_alert = "A";
  c.prometheus_url = "http://127.0.0.1:1";
  c.alert_interval = 100ms;
  AlertWatch watch({c});
  watch.Start();
  watch.Stop();  // after at least the first poll: Loop polls before it first waits
  EXPECT_FALSE(watch.Firing());
  ASSERT_TRUE(watch.LastError());
  EXPECT_NE(watch.LastError()->find("alert A: prometheus: "), std::string::npos)
      << *watch.LastError();
  EXPECT_TRUE(AlertWatch({}).empty());
}

}  // namespace
}  // namespace faultline::probes
