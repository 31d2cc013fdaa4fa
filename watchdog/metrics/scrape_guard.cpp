#include "metrics/scrape_guard.hpp"

#include <map>

namespace pgwd {

/// One per guarded registry. The registry is held weakly, so that a later registry at the same
/// address is not taken for this one.
struct ScrapeGuard::Gate {
  std::weak_ptr<prometheus::Registry> registry;
  std::mutex rebuilding;
};

namespace {

std::mutex gates_mutex;
std::map<const prometheus::Registry*, std::shared_ptr<ScrapeGuard::Gate>>& gates() {
  static std::map<const prometheus::Registry*, std::shared_ptr<ScrapeGuard::Gate>> all;
  return all;
}

// Called with gates_mutex held: the gate of a live, guarded registry, or null.
template <typename Gate>
std::shared_ptr<Gate> live_gate(std::map<const prometheus::Registry*, std::shared_ptr<Gate>>& all,
                                const prometheus::Registry& registry) {
  const auto it = all.find(&registry);
  if (it == all.end()) return nullptr;
  if (it->second->registry.lock().get() != &registry) {  // that one is gone
    all.erase(it);
    return nullptr;
  }
  return it->second;
}

}  // namespace

void ScrapeGuard::declare_guarded(const std::shared_ptr<prometheus::Registry>& registry) {
  const std::lock_guard lock(gates_mutex);
  if (live_gate(gates(), *registry)) return;
  auto gate = std::make_shared<Gate>();
  gate->registry = registry;
  gates()[registry.get()] = std::move(gate);
}

bool ScrapeGuard::guarded(const prometheus::Registry& registry) {
  const std::lock_guard lock(gates_mutex);
  return live_gate(gates(), registry) != nullptr;
}

ScrapeGuard::ScrapeGuard(const prometheus::Registry& registry) {
  {
    const std::lock_guard lock(gates_mutex);
    gate_ = live_gate(gates(), registry);
  }
  if (gate_) lock_ = std::unique_lock(gate_->rebuilding);
}

ScrapeGuard::~ScrapeGuard() = default;

std::vector<prometheus::MetricFamily> collect_guarded(const prometheus::Registry& registry) {
  const ScrapeGuard guard(registry);
  return registry.Collect();
}

}  // namespace pgwd
