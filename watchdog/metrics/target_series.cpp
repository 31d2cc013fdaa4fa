#include "metrics/target_series.hpp"

#include "metrics/families.hpp"

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

bool TargetSeries::shown(ConnectionState state) noexcept {
  return state != ConnectionState::inspecting && state != ConnectionState::down &&
         state != ConnectionState::stopped;
}

TargetSeries::TargetSeries(Store& store, const std::string& target, const LoopHistograms* shared,
                           bool pooled)
    : store_(store), target_(target) {
  namespace f = families;
  auto row = std::make_shared<Row>(std::vector<Label>{{"target", target}});
  up_ = row->gauge(f::up);
  in_hot_standby_ = row->gauge(f::in_hot_standby);
  for (std::size_t i = 0; i < kStates; ++i) {
    const auto state = static_cast<ConnectionState>(i);
    if (shown(state))
      connections_[i] = row->gauge(f::connections, "state", std::string(to_string(state)));
  }
  for (Cause cause : kDisconnectCauses)
    disconnects_[static_cast<std::size_t>(cause)] =
        row->counter(f::disconnects, "cause", std::string(to_string(cause)));
  for (Cause cause : kConnectFailureCauses)
    connect_failures_[static_cast<std::size_t>(cause)] =
        row->counter(f::connect_failures, "cause", std::string(to_string(cause)));
  reconnect_success_ = row->counter(f::reconnects, "result", "success");
  reconnect_failure_ = row->counter(f::reconnects, "result", "failure");
  hedges_ = row->counter(f::connect_hedges);
  wakeups_ = row->counter(f::wakeups);
  probe_ok_ = row->counter(f::probes, "result", "ok");
  probe_error_ = row->counter(f::probes, "result", "error");
  probe_timeout_ = row->counter(f::probes, "result", "timeout");
  if (shared) {
    probe_duration_ = shared->probe_duration;
    outage_ = shared->outage;
  } else {
    probe_duration_ = row->histogram(f::probe_duration);
    outage_ = row->histogram(f::outage);
  }
  notifications_ = row->counter(f::notifications);
  notices_ = row->counter(f::notices);
  if (pooled)
    for (ServerChange change : kServerChanges)
      server_changes_[static_cast<std::size_t>(change)] =
          row->counter(f::server_changes, "change", std::string(to_string(change)));
  row_ = store.publish(std::move(row));
}

Counter& TargetSeries::by_cause(std::array<Counter, kCauses>& series, const Family& family,
                                Cause cause) {
  Counter& slot = series[static_cast<std::size_t>(cause)];
  if (!slot) {
    auto row = std::make_shared<Row>(std::vector<Label>{{"target", target_}});
    slot = row->counter(family, "cause", std::string(to_string(cause)));
    late_rows_.push_back(store_.publish(std::move(row)));
  }
  return slot;
}

void TargetSeries::connection_moved(std::optional<ConnectionState> from,
                                    std::optional<ConnectionState> to) {
  if (from && shown(*from)) connections_[static_cast<std::size_t>(*from)].decrement();
  if (to && shown(*to)) connections_[static_cast<std::size_t>(*to)].increment();
  const double connected =
      connections_[static_cast<std::size_t>(ConnectionState::healthy)].value() +
      connections_[static_cast<std::size_t>(ConnectionState::probing)].value();
  up_.set(connected > 0 ? 1 : 0);
}

void TargetSeries::disconnected(Cause cause) {
  by_cause(disconnects_, families::disconnects, cause).increment();
}

void TargetSeries::connect_failed(Cause cause) {
  by_cause(connect_failures_, families::connect_failures, cause).increment();
}

void TargetSeries::server_changed(ServerChange change) {
  if (Counter& series = server_changes_[static_cast<std::size_t>(change)]) series.increment();
}

void TargetSeries::probed(ProbeResult result, std::chrono::nanoseconds duration) {
  switch (result) {
    case ProbeResult::ok:
      probe_ok_.increment();
      probe_duration_.observe(seconds(duration));
      break;
    case ProbeResult::error:
      probe_error_.increment();
      break;
    case ProbeResult::timeout:
      probe_timeout_.increment();
      break;
  }
}

void TargetSeries::outage(std::chrono::nanoseconds duration) {
  outage_.observe(seconds(duration));
}

}  // namespace pgwd
