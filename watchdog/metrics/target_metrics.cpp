#include "metrics/target_metrics.hpp"

#include <chrono>

namespace pgwd {
namespace {

// Causes a connection that was connected can be lost to; their series exist from the start.
constexpr Cause kDisconnectCauses[] = {
    Cause::wrong_role, Cause::server_shutdown, Cause::idle_session_timeout, Cause::server_error,
    Cause::closed,     Cause::timed_out,       Cause::probe_failed,         Cause::probe_timeout};

// Why an attempt can fail; their series exist from the start.
constexpr Cause kConnectFailureCauses[] = {
    Cause::wrong_role,         Cause::auth_failed, Cause::database_missing, Cause::too_many_clients,
    Cause::cannot_connect_now, Cause::dns,         Cause::connect_timeout,  Cause::connect_failed};

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

bool TargetMetrics::shown(ConnectionState state) noexcept {
  return state != ConnectionState::inspecting && state != ConnectionState::down &&
         state != ConnectionState::stopped;
}

TargetMetrics::TargetMetrics(MetricFamilies& families, const std::string& target)
    : families_(families),
      target_(target),
      up_(families.up.Add({{"target", target}})),
      in_hot_standby_(families.in_hot_standby.Add({{"target", target}})),
      reconnect_success_(families.reconnects.Add({{"target", target}, {"result", "success"}})),
      reconnect_failure_(families.reconnects.Add({{"target", target}, {"result", "failure"}})),
      wakeups_(families.wakeups.Add({{"target", target}})),
      probe_ok_(families.probes.Add({{"target", target}, {"result", "ok"}})),
      probe_error_(families.probes.Add({{"target", target}, {"result", "error"}})),
      probe_timeout_(families.probes.Add({{"target", target}, {"result", "timeout"}})),
      probe_duration_(families.probe_duration.Add({{"target", target}},
                                                  MetricFamilies::probe_duration_buckets())),
      outage_(families.outage.Add({{"target", target}}, MetricFamilies::outage_buckets())),
      notifications_(families.notifications.Add({{"target", target}})),
      notices_(families.notices.Add({{"target", target}})) {
  for (std::size_t i = 0; i < kStates; ++i) {
    const auto state = static_cast<ConnectionState>(i);
    if (shown(state))
      connections_[i] =
          &families.connections.Add({{"target", target}, {"state", std::string(to_string(state))}});
  }
  for (Cause cause : kDisconnectCauses) disconnected_series(cause);
  for (Cause cause : kConnectFailureCauses) connect_failure_series(cause);
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
  families_.up.Remove(&up_);
  families_.in_hot_standby.Remove(&in_hot_standby_);
  for (prometheus::Gauge* g : connections_)
    if (g) families_.connections.Remove(g);
  for (prometheus::Counter* c : disconnects_)
    if (c) families_.disconnects.Remove(c);
  for (prometheus::Counter* c : connect_failures_)
    if (c) families_.connect_failures.Remove(c);
  families_.reconnects.Remove(&reconnect_success_);
  families_.reconnects.Remove(&reconnect_failure_);
  families_.wakeups.Remove(&wakeups_);
  families_.probes.Remove(&probe_ok_);
  families_.probes.Remove(&probe_error_);
  families_.probes.Remove(&probe_timeout_);
  families_.probe_duration.Remove(&probe_duration_);
  families_.outage.Remove(&outage_);
  families_.notifications.Remove(&notifications_);
  families_.notices.Remove(&notices_);
}

void TargetMetrics::connection_moved(std::optional<ConnectionState> from,
                                     std::optional<ConnectionState> to) {
  if (from && shown(*from)) connections_[static_cast<std::size_t>(*from)]->Decrement();
  if (to && shown(*to)) connections_[static_cast<std::size_t>(*to)]->Increment();
  const double connected =
      connections_[static_cast<std::size_t>(ConnectionState::healthy)]->Value() +
      connections_[static_cast<std::size_t>(ConnectionState::probing)]->Value();
  up_.Set(connected > 0 ? 1 : 0);
}

void TargetMetrics::disconnected(Cause cause) {
  disconnected_series(cause).Increment();
}

void TargetMetrics::probed(ProbeResult result, std::chrono::nanoseconds duration) {
  switch (result) {
    case ProbeResult::ok:
      probe_ok_.Increment();
      probe_duration_.Observe(seconds(duration));
      break;
    case ProbeResult::error:
      probe_error_.Increment();
      break;
    case ProbeResult::timeout:
      probe_timeout_.Increment();
      break;
  }
}

void TargetMetrics::outage(std::chrono::nanoseconds duration) {
  outage_.Observe(seconds(duration));
}

}  // namespace pgwd
