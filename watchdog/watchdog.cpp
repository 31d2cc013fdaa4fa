#include "pgwd/watchdog.hpp"

#include <event2/event.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "dns/resolver.hpp"
#include "event/libevent_scheduler.hpp"
#include "event/loop_lag_monitor.hpp"
#include "health/attempt_gate.hpp"
#include "health/random.hpp"
#include "metrics/metric_families.hpp"
#include "target.hpp"

namespace pgwd {

class Watchdog::Impl {
 public:
  Impl(event_base* base, WatchdogOptions options)
      : base_(base),
        observer_(options.observer),
        logger_(options.logger ? std::move(options.logger) : spdlog::default_logger()),
        registry_(options.registry ? std::move(options.registry)
                                   : std::make_shared<prometheus::Registry>()),
        scheduler_(base),
        resolver_(base, scheduler_, options.nameservers),
        families_(*registry_),
        gate_(scheduler_, options.max_concurrent_connects),
        reaper_(scheduler_.make_timer([this] { retired_.clear(); })) {
    if (!base) throw std::invalid_argument("Watchdog needs an event_base");
    if (options.loop_lag_interval > std::chrono::milliseconds::zero()) {
      lag_.emplace(scheduler_, options.loop_lag_interval, [this](Nanos lag) {
        families_.event_loop_lag.Observe(std::chrono::duration<double>(lag).count());
      });
    }
  }

  ~Impl() {
    targets_.clear();
    retired_.clear();
  }

  void add_target(TargetOptions options) {
    TargetSettings settings = prepare_target(options);
    if (find(options.name) != targets_.end())
      throw InvalidTarget("target '" + options.name + "': a target with this name already exists");
    auto target = std::make_unique<Target>(options, std::move(settings), base_, scheduler_, random_,
                                           resolver_, gate_, families_, observer_, *logger_);
    Target& added = *target;
    targets_.push_back(std::move(target));
    added.start();
  }

  bool remove_target(std::string_view name) {
    const auto it = find(name);
    if (it == targets_.end()) return false;
    // We may be inside one of this target's callbacks: silence it now, destroy it from the loop.
    (*it)->retire();
    retired_.push_back(std::move(*it));
    targets_.erase(it);
    reaper_->arm(Nanos::zero());
    logger_->info("target {}: removed", name);
    return true;
  }

  std::vector<std::string> target_names() const {
    std::vector<std::string> names;
    for (const auto& t : targets_) names.push_back(t->name());
    return names;
  }

  std::vector<ConnectionState> connection_states(std::string_view name) const {
    const auto it = find(name);
    return it == targets_.end() ? std::vector<ConnectionState>{} : (*it)->states();
  }

  const std::shared_ptr<prometheus::Registry>& registry() const noexcept { return registry_; }

 private:
  using Targets = std::vector<std::unique_ptr<Target>>;

  Targets::const_iterator find(std::string_view name) const {
    return std::find_if(targets_.begin(), targets_.end(),
                        [&](const auto& t) { return t->name() == name; });
  }
  Targets::iterator find(std::string_view name) {
    return std::find_if(targets_.begin(), targets_.end(),
                        [&](const auto& t) { return t->name() == name; });
  }

  event_base* base_;
  Observer* observer_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<prometheus::Registry> registry_;
  LibeventScheduler scheduler_;
  SystemRandom random_;
  Resolver resolver_;  // outlives every target's lookups
  MetricFamilies families_;
  AttemptGate gate_;  // outlives every target's connections
  std::optional<LoopLagMonitor> lag_;
  Targets targets_;
  Targets retired_;  // removed from inside a callback; destroyed by reaper_ from the loop
  TimerPtr reaper_;
};

Watchdog::Watchdog(event_base* base, WatchdogOptions options)
    : impl_(std::make_unique<Impl>(base, std::move(options))) {}
Watchdog::~Watchdog() = default;

void Watchdog::add_target(TargetOptions options) {
  impl_->add_target(std::move(options));
}
bool Watchdog::remove_target(std::string_view name) {
  return impl_->remove_target(name);
}
std::vector<std::string> Watchdog::target_names() const {
  return impl_->target_names();
}
std::vector<ConnectionState> Watchdog::connection_states(std::string_view target) const {
  return impl_->connection_states(target);
}
const std::shared_ptr<prometheus::Registry>& Watchdog::registry() const noexcept {
  return impl_->registry();
}

}  // namespace pgwd
