#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace faultline::metrics {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Status ValidateLabels(const std::string& family, const Labels& labels) {
  std::set<std::string> seen;
  for (const auto& [name, value] : labels) {
    if (!IsValidLabelName(name)) {
      return InvalidArgument(family + ": invalid label name '" + name + "'");
    }
    if (!seen.insert(name).second) {
      return InvalidArgument(family + ": label '" + name + "' given twice");
    }
  }
  return Status::Ok();
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::string LabelText(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
  }
  return out + "}";
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(IsAlpha(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(IsAlpha(c) || IsDigit(c) || c == ':')) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsAlpha(name[0]) || name.substr(0, 2) == "__") return false;
  for (char c : name) {
    if (!(IsAlpha(c) || IsDigit(c))) return false;
  }
  return true;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counters are integers almost always; print them exactly, without an exponent.
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

Status Registry::Declare(const std::string& name, MetricType type, const std::string& help) {
  if (!IsValidMetricName(name)) return InvalidArgument("invalid metric name '" + name + "'");
  if (help.empty()) return InvalidArgument(name + ": help text must not be empty");
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
    return Status::Ok();
  }
  if (it->second.type != type || it->second.help != help) {
    return AlreadyExists(name + " is already declared as a " + TypeName(it->second.type) +
                         " with other help text");
  }
  return Status::Ok();
}

Result<Registry::Family*> Registry::FamilyLocked(const std::string& name, MetricType want,
                                                 bool any_type) {
  auto it = families_.find(name);
  if (it == families_.end()) return InvalidArgument(name + " is not declared");
  if (!any_type && it->second.type != want) {
    return InvalidArgument(name + " is a " + TypeName(it->second.type) + ", not a " +
                           TypeName(want));
  }
  return &it->second;
}

Status Registry::Increment(const std::string& name, const Labels& labels, double delta) {
  if (!(delta >= 0)) return InvalidArgument(name + ": a counter only goes up");
  if (Status s = ValidateLabels(name, labels); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  Result<Family*> family = FamilyLocked(name, MetricType::kCounter, false);
  if (!family.ok()) return family.status();
  (*family)->series[labels] += delta;
  return Status::Ok();
}

Status Registry::Set(const std::string& name, const Labels& labels, double value) {
  if (Status s = ValidateLabels(name, labels); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  Result<Family*> family = FamilyLocked(name, MetricType::kGauge, false);
  if (!family.ok()) return family.status();
  (*family)->series[labels] = value;
  return Status::Ok();
}

Status Registry::Replace(const std::string& name, std::vector<Sample> samples) {
  std::map<Labels, double> series;
  for (Sample& sample : samples) {
    if (Status s = ValidateLabels(name, sample.labels); !s.ok()) return s;
    series[std::move(sample.labels)] = sample.value;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Result<Family*> family = FamilyLocked(name, MetricType::kGauge, true);
  if (!family.ok()) return family.status();
  (*family)->series = std::move(series);
  return Status::Ok();
}

Status Registry::DeclareHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
      return InvalidArgument(name + ": bucket bounds must be finite and strictly increasing");
    }
  }
  if (Status s = Declare(name, MetricType::kHistogram, help); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = families_[name];
  if (family.histograms.empty() && family.bounds.empty()) {
    family.bounds = std::move(bounds);
  } else if (family.bounds != bounds) {
    return AlreadyExists(name + " is already declared with other buckets");
  }
  return Status::Ok();
}

Status Registry::Observe(const std::string& name, const Labels& labels, double value) {
  if (std::isnan(value)) return InvalidArgument(name + ": cannot observe NaN");
  if (Status s = ValidateLabels(name, labels); !s.ok()) return s;
  for (const auto& [label, unused] : labels) {
    if (label == "le") return InvalidArgument(name + ": the label le is the histogram's own");
  }
  std::lock_guard<std::mutex> lock(mu_);
  Result<Family*> family = FamilyLocked(name, MetricType::kHistogram, false);
  if (!family.ok()) return family.status();
  const std::vector<double>& bounds = (*family)->bounds;
  Family::Histogram& h = (*family)->histograms[labels];
  h.buckets.resize(bounds.size() + 1);
  size_t bucket = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  ++h.buckets[bucket];
  h.sum += value;
  ++h.count;
  return Status::Ok();
}

bool Registry::Get(const std::string& name, const Labels& labels, double* value) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto family = families_.find(name);
  if (family == families_.end()) return false;
  auto series = family->second.series.find(labels);
  if (series == family->second.series.end()) return false;
  *value = series->second;
  return true;
}

void Registry::AddCollector(Collector collector) {
  std::lock_guard<std::mutex> lock(collectors_mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Render() {
  {
    std::lock_guard<std::mutex> lock(collectors_mu_);
    for (const Collector& collector : collectors_) collector(*this);
  }
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + " " + EscapeHelp(family.help) + "\n";
    out += "# TYPE " + name + " " + TypeName(family.type) + "\n";
    for (const auto& [labels, value] : family.series) {
      out += name + LabelText(labels) + " " + FormatValue(value) + "\n";
    }
    for (const auto& [labels, h] : family.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= family.bounds.size(); ++i) {
        cumulative += h.buckets[i];
        Labels with_le = labels;
        with_le.emplace_back(
            "le", i < family.bounds.size() ? FormatValue(family.bounds[i]) : std::string("+Inf"));
        out += name + "_bucket" + LabelText(with_le) + " " +
               FormatValue(static_cast<double>(cumulative)) + "\n";
      }
      out += name + "_sum" + LabelText(labels) + " " + FormatValue(h.sum) + "\n";
      out += name + "_count" + LabelText(labels) + " " + FormatValue(static_cast<double>(h.count)) +
             "\n";
    }
  }
  return out;
}

}  // namespace faultline::metrics
