#include "metrics/scrape_guard.hpp"

#include <prometheus/collectable.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>

#include "pgwd/guarded_registry.hpp"

namespace pgwd {

/// One per guarded registry. The registry is held weakly, so that a later registry at the same
/// address is not taken for this one.
struct ScrapeGuard::Gate {
  std::weak_ptr<prometheus::Registry> registry;
  std::mutex mutex;
  std::condition_variable rebuilt;
  std::size_t rebuilding = 0;    // rebuilds under way (several watchdogs may share a registry)
  std::uint64_t generation = 0;  // counts every start and end of one
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

namespace {

std::shared_ptr<ScrapeGuard::Gate> gate_of(const prometheus::Registry& registry) {
  const std::lock_guard lock(gates_mutex);
  return live_gate(gates(), registry);
}

}  // namespace

ScrapeGuard::ScrapeGuard(const prometheus::Registry& registry) : gate_(gate_of(registry)) {
  if (!gate_) return;
  const std::lock_guard lock(gate_->mutex);
  ++gate_->rebuilding;
  ++gate_->generation;
}

ScrapeGuard::~ScrapeGuard() {
  if (!gate_) return;
  {
    const std::lock_guard lock(gate_->mutex);
    --gate_->rebuilding;
    ++gate_->generation;
  }
  gate_->rebuilt.notify_all();
}

void read_guarded(const prometheus::Registry& registry, const std::function<void()>& read) {
  const std::shared_ptr<ScrapeGuard::Gate> gate = gate_of(registry);
  if (!gate) {
    read();
    return;
  }
  for (;;) {
    std::uint64_t before;
    {
      std::unique_lock lock(gate->mutex);
      gate->rebuilt.wait(lock, [&] { return gate->rebuilding == 0; });
      before = gate->generation;
    }
    read();
    const std::lock_guard lock(gate->mutex);
    if (gate->generation == before) return;  // no rebuild began or ended meanwhile
  }
}

std::vector<prometheus::MetricFamily> collect_guarded(const prometheus::Registry& registry) {
  std::vector<prometheus::MetricFamily> collected;
  read_guarded(registry, [&] { collected = registry.Collect(); });
  return collected;
}

namespace {

class GuardedCollectable final : public prometheus::Collectable {
 public:
  explicit GuardedCollectable(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return collect_guarded(*registry_);
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> guarded_collectable(
    std::shared_ptr<prometheus::Registry> registry) {
  if (!registry) throw std::invalid_argument("guarded_collectable: null registry");
  ScrapeGuard::declare_guarded(registry);
  return std::make_shared<GuardedCollectable>(std::move(registry));
}

}  // namespace pgwd
