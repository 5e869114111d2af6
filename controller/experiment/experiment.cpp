#include "controller/experiment/experiment.h"

namespace faultline::experiment {

const Probe* Experiment::FindProbe(const std::string& name) const {
  for (const Probe& p : probes) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const Target* Experiment::FindTarget(const std::string& name) const {
  for (const Target& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace faultline::experiment
