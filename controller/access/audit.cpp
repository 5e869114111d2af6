#include "controller/access/audit.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>

namespace faultline::access {
namespace {

// A value fit for key="value": backslash, quote and control characters escaped.
std::string Quoted(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string UtcMs(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

}  // namespace

AuditLog::AuditLog(store::RunStore* store, Clock* clock, size_t max_queued)
    : store_(store), clock_(clock), max_queued_(max_queued) {
  if (store_ != nullptr) writer_ = std::thread([this] { WriterLoop(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

std::string AuditLog::FormatLine(const store::AuditRecord& r) {
  return "audit: at=" + UtcMs(r.at_unix_ms) + " action=" + Quoted(r.action) +
         " outcome=" + r.outcome + " identity=" + Quoted(r.identity) + " role=" + Quoted(r.role) +
         " team=" + Quoted(r.team) + " source=" + Quoted(r.source) + " peer=" + Quoted(r.peer) +
         " detail=" + Quoted(r.detail);
}

void AuditLog::Record(std::string_view action, const Principal& who, const Status& outcome,
                      std::string_view detail) {
  store::AuditRecord r;
  r.at_unix_ms = clock_->WallUnixMs();
  r.action = std::string(action);
  r.outcome = outcome.ok() ? "OK" : StatusCodeName(outcome.code());
  r.identity = who.identity;
  r.role = RoleName(who.role);
  r.team = who.team;
  r.source = who.source;
  r.peer = who.peer;
  r.detail = std::string(detail);
  if (!outcome.ok() && !outcome.message().empty()) {
    r.detail += (r.detail.empty() ? "" : "; ") + std::string("error: ") + outcome.message();
  }
  const std::string line = FormatLine(r);
  if (outcome.ok()) {
    spdlog::info("{}", line);
  } else {
    spdlog::warn("{}", line);
  }
  if (store_ == nullptr) return;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= max_queued_) {
      spdlog::warn("audit: {} records wait for {}; this one is only in the log", queue_.size(),
                   store_->Describe());
      return;
    }
    queue_.push_back(std::move(r));
  }
  cv_.notify_all();
}

void AuditLog::Flush() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

void AuditLog::WriterLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    store::AuditRecord r = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    lock.unlock();
    if (Status s = store_->AppendAudit(r); !s.ok()) {
      spdlog::error("audit: not stored in {}: {}", store_->Describe(), s.message());
    }
    lock.lock();
    --in_flight_;
    cv_.notify_all();
  }
}

}  // namespace faultline::access
