#include "metrics/target_metrics.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <type_traits>

#include "metrics/scrape_guard.hpp"
#include "metrics/series_sweep.hpp"

namespace pgwd {
namespace {

// Causes a connection that was connected can be lost to; their series exist from the start.
constexpr Cause kDisconnectCauses[] = {Cause::wrong_role,
                                       Cause::server_shutdown,
                                       Cause::immediate_shutdown,
                                       Cause::server_crash,
                                       Cause::idle_session_timeout,
                                       Cause::server_error,
                                       Cause::pooler_server_lost,
                                       Cause::pooler_login_failing,
                                       Cause::pooler_queue_timeout,
                                       Cause::closed,
                                       Cause::timed_out,
                                       Cause::probe_failed,
                                       Cause::probe_timeout};

// Why an attempt can fail; their series exist from the start.
constexpr Cause kConnectFailureCauses[] = {
    Cause::wrong_role, Cause::auth_failed, Cause::database_missing, Cause::too_many_clients,
    Cause::cannot_connect_now, Cause::dns, Cause::connect_timeout, Cause::connect_failed,
    // PgBouncer accepts the login, then the first round trip finds no server.
    Cause::pooler_login_failing, Cause::pooler_queue_timeout, Cause::pooler_server_lost};

constexpr ServerChange kServerChanges[] = {ServerChange::restart, ServerChange::other_server};

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

bool TargetMetrics::shown(ConnectionState state) noexcept {
  return state != ConnectionState::inspecting && state != ConnectionState::down &&
         state != ConnectionState::stopped;
}

TargetMetrics::TargetMetrics(MetricFamilies& families, const std::string& target,
                             const SharedHistograms* shared, bool pooled)
    : families_(families),
      target_(target),
      own_histograms_(shared == nullptr),
      up_(&families.up.Add({{"target", target}})),
      in_hot_standby_(&families.in_hot_standby.Add({{"target", target}})),
      reconnect_success_(&families.reconnects.Add({{"target", target}, {"result", "success"}})),
      reconnect_failure_(&families.reconnects.Add({{"target", target}, {"result", "failure"}})),
      wakeups_(&families.wakeups.Add({{"target", target}})),
      probe_ok_(&families.probes.Add({{"target", target}, {"result", "ok"}})),
      probe_error_(&families.probes.Add({{"target", target}, {"result", "error"}})),
      probe_timeout_(&families.probes.Add({{"target", target}, {"result", "timeout"}})),
      probe_duration_(shared ? shared->probe_duration
                             : &families.probe_duration.Add(
                                   {{"target", target}}, MetricFamilies::probe_duration_buckets())),
      outage_(shared
                  ? shared->outage
                  : &families.outage.Add({{"target", target}}, MetricFamilies::outage_buckets())),
      notifications_(&families.notifications.Add({{"target", target}})),
      notices_(&families.notices.Add({{"target", target}})) {
  for (std::size_t i = 0; i < kStates; ++i) {
    const auto state = static_cast<ConnectionState>(i);
    if (shown(state))
      connections_[i] =
          &families.connections.Add({{"target", target}, {"state", std::string(to_string(state))}});
  }
  for (Cause cause : kDisconnectCauses) disconnected_series(cause);
  for (Cause cause : kConnectFailureCauses) connect_failure_series(cause);
  if (pooled)
    for (ServerChange change : kServerChanges)
      server_changes_[static_cast<std::size_t>(change)] = &families.server_changes.Add(
          {{"target", target}, {"change", std::string(to_string(change))}});
}

void TargetMetrics::server_changed(ServerChange change) {
  if (auto* series = server_changes_[static_cast<std::size_t>(change)]) series->Increment();
}

prometheus::Counter& TargetMetrics::connect_failure_series(Cause cause) {
  auto& slot = connect_failures_[static_cast<std::size_t>(cause)];
  if (!slot)
    slot = &families_.connect_failures.Add(
        {{"target", target_}, {"cause", std::string(to_string(cause))}});
  return *slot;
}

void TargetMetrics::connect_failed(Cause cause) {
  connect_failure_series(cause).Increment();
}

prometheus::Counter& TargetMetrics::disconnected_series(Cause cause) {
  auto& slot = disconnects_[static_cast<std::size_t>(cause)];
  if (!slot)
    slot =
        &families_.disconnects.Add({{"target", target_}, {"cause", std::string(to_string(cause))}});
  return *slot;
}

TargetMetrics::~TargetMetrics() {
  if (removed_ || families_.dropping()) return;  // the latter: they go whole
  each_series([](auto& family, std::string_view, std::string_view, auto*& series, const auto*) {
    family.Remove(series);
  });
}

template <typename Visit>
void TargetMetrics::each_series(Visit&& visit) {
  // visit(family, name of the second label or empty, its value, series slot, buckets or null)
  using Buckets = prometheus::Histogram::BucketBoundaries;
  const Buckets* none = nullptr;
  visit(families_.up, "", "", up_, none);
  visit(families_.in_hot_standby, "", "", in_hot_standby_, none);
  for (std::size_t i = 0; i < kStates; ++i)
    if (connections_[i])
      visit(families_.connections, "state", to_string(static_cast<ConnectionState>(i)),
            connections_[i], none);
  for (std::size_t i = 0; i < kCauses; ++i) {
    const std::string_view cause = to_string(static_cast<Cause>(i));
    if (disconnects_[i]) visit(families_.disconnects, "cause", cause, disconnects_[i], none);
    if (connect_failures_[i])
      visit(families_.connect_failures, "cause", cause, connect_failures_[i], none);
  }
  visit(families_.reconnects, "result", "success", reconnect_success_, none);
  visit(families_.reconnects, "result", "failure", reconnect_failure_, none);
  visit(families_.wakeups, "", "", wakeups_, none);
  visit(families_.probes, "result", "ok", probe_ok_, none);
  visit(families_.probes, "result", "error", probe_error_, none);
  visit(families_.probes, "result", "timeout", probe_timeout_, none);
  if (own_histograms_) {
    visit(families_.probe_duration, "", "", probe_duration_,
          &MetricFamilies::probe_duration_buckets());
    visit(families_.outage, "", "", outage_, &MetricFamilies::outage_buckets());
  }
  visit(families_.notifications, "", "", notifications_, none);
  visit(families_.notices, "", "", notices_, none);
  for (ServerChange change : kServerChanges)
    if (auto*& series = server_changes_[static_cast<std::size_t>(change)])
      visit(families_.server_changes, "change", to_string(change), series, none);
}

namespace {

/// One SeriesSweep per family a target has series in.
class Sweeps {
 public:
  template <typename T>
  void add(prometheus::Family<T>& family, std::string_view target, std::string_view label,
           std::string_view value, T* series) {
    SeriesSweep<T>& sweep = sweep_for(family);
    if (label.empty())
      sweep.add({{"target", target}}, series);
    else
      sweep.add({{"target", target}, {label, value}}, series);
  }

  /// Only for families that also lose series: a family nothing leaves is not touched.
  template <typename T>
  void keep(prometheus::Family<T>& family, std::string_view target, std::string_view label,
            std::string_view value, T** slot, const prometheus::Histogram::BucketBoundaries* b) {
    auto& sweeps = of<T>();
    const auto it = sweeps.find(&family);
    if (it == sweeps.end()) return;
    if (label.empty())
      it->second.keep({{"target", target}}, slot, b);
    else
      it->second.keep({{"target", target}, {label, value}}, slot, b);
  }

  TargetMetrics::Removal run(const prometheus::Registry* guarded) {
    TargetMetrics::Removal removal;
    auto run_all = [&](auto& sweeps) {
      for (auto& [family, sweep] : sweeps) {
        const auto outcome = sweep.run(guarded);
        removal.in_order += outcome.in_order;
        removal.visits += outcome.visits;
        removal.rebuilt += outcome.rebuilt ? 1 : 0;
      }
    };
    run_all(gauges_);
    run_all(counters_);
    run_all(histograms_);
    return removal;
  }

 private:
  template <typename T>
  using SweepOf = std::map<prometheus::Family<T>*, SeriesSweep<T>>;

  template <typename T>
  SeriesSweep<T>& sweep_for(prometheus::Family<T>& family) {
    auto& sweeps = of<T>();
    auto it = sweeps.find(&family);
    if (it == sweeps.end()) it = sweeps.try_emplace(&family, family).first;
    return it->second;
  }

  template <typename T>
  SweepOf<T>& of() {
    if constexpr (std::is_same_v<T, prometheus::Gauge>)
      return gauges_;
    else if constexpr (std::is_same_v<T, prometheus::Counter>)
      return counters_;
    else
      return histograms_;
  }

  SweepOf<prometheus::Gauge> gauges_;
  SweepOf<prometheus::Counter> counters_;
  SweepOf<prometheus::Histogram> histograms_;
};

}  // namespace

TargetMetrics::Removal TargetMetrics::remove_together(std::span<TargetMetrics* const> targets,
                                                      std::span<TargetMetrics* const> staying,
                                                      const prometheus::Registry* guarded) {
  Sweeps sweeps;
  for (TargetMetrics* t : targets) {
    if (t->removed_ || t->families_.dropping()) continue;
    t->each_series([&](auto& family, std::string_view label, std::string_view value, auto*& series,
                       const auto*) { sweeps.add(family, t->target_, label, value, series); });
    t->removed_ = true;
  }
  if (guarded)  // else nothing is rebuilt: the series that stay need not be known
    for (TargetMetrics* t : staying) {
      if (t->removed_ || t->families_.dropping()) continue;
      t->each_series([&](auto& family, std::string_view label, std::string_view value,
                         auto*& series, const auto* buckets) {
        sweeps.keep(family, t->target_, label, value, &series, buckets);
      });
    }
  // One window for every family: a guarded scrape (a Collect of the whole registry) that
  // overlaps any rebuild is collected again, so one per family would make it collect in vain
  // between each two.
  std::optional<ScrapeGuard> window;
  if (guarded) window.emplace(*guarded);
  return sweeps.run(guarded);
}

void TargetMetrics::connection_moved(std::optional<ConnectionState> from,
                                     std::optional<ConnectionState> to) {
  if (from && shown(*from)) connections_[static_cast<std::size_t>(*from)]->Decrement();
  if (to && shown(*to)) connections_[static_cast<std::size_t>(*to)]->Increment();
  const double connected =
      connections_[static_cast<std::size_t>(ConnectionState::healthy)]->Value() +
      connections_[static_cast<std::size_t>(ConnectionState::probing)]->Value();
  up_->Set(connected > 0 ? 1 : 0);
}

void TargetMetrics::disconnected(Cause cause) {
  disconnected_series(cause).Increment();
}

void TargetMetrics::probed(ProbeResult result, std::chrono::nanoseconds duration) {
  switch (result) {
    case ProbeResult::ok:
      probe_ok_->Increment();
      probe_duration_->Observe(seconds(duration));
      break;
    case ProbeResult::error:
      probe_error_->Increment();
      break;
    case ProbeResult::timeout:
      probe_timeout_->Increment();
      break;
  }
}

void TargetMetrics::outage(std::chrono::nanoseconds duration) {
  outage_->Observe(seconds(duration));
}

}  // namespace pgwd
