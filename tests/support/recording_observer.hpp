#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "pgwd/observer.hpp"

namespace pgwd::testing {

/// Keeps every event with the time it arrived, for assertions after the fact.
class RecordingObserver : public Observer {
 public:
  using Clock = std::chrono::steady_clock;
  template <typename Event>
  struct Stamped {
    Event event;
    Clock::time_point at;
  };

  std::vector<Stamped<HealthyEvent>> healthy;
  std::vector<Stamped<DownEvent>> down;
  std::vector<Stamped<ReconnectAttemptEvent>> attempts;
  std::vector<Stamped<ConnectFailedEvent>> connect_failures;
  std::vector<Stamped<ProbeEvent>> probes;
  std::vector<Stamped<NotificationEvent>> notifications;
  std::vector<Stamped<NoticeEvent>> notices;
  std::vector<Stamped<StateChangeEvent>> state_changes;
  std::vector<Stamped<RoleChangeEvent>> role_changes;
  std::vector<Stamped<ServerChangeEvent>> server_changes;

  void on_healthy(const HealthyEvent& e) override { healthy.push_back({e, Clock::now()}); }
  void on_down(const DownEvent& e) override { down.push_back({e, Clock::now()}); }
  void on_reconnect_attempt(const ReconnectAttemptEvent& e) override {
    attempts.push_back({e, Clock::now()});
  }
  void on_connect_failed(const ConnectFailedEvent& e) override {
    connect_failures.push_back({e, Clock::now()});
  }
  void on_probe(const ProbeEvent& e) override { probes.push_back({e, Clock::now()}); }
  void on_notification(const NotificationEvent& e) override {
    notifications.push_back({e, Clock::now()});
  }
  void on_notice(const NoticeEvent& e) override { notices.push_back({e, Clock::now()}); }
  void on_role_change(const RoleChangeEvent& e) override {
    role_changes.push_back({e, Clock::now()});
  }
  void on_server_change(const ServerChangeEvent& e) override {
    server_changes.push_back({e, Clock::now()});
  }
  void on_state_change(const StateChangeEvent& e) override {
    state_changes.push_back({e, Clock::now()});
  }
};

/// The heartbeats (round trips after a silence, not probes for a cause) to `target`, in order.
inline std::vector<RecordingObserver::Stamped<ProbeEvent>> heartbeats_of(
    const RecordingObserver& observer, const std::string& target) {
  std::vector<RecordingObserver::Stamped<ProbeEvent>> found;
  for (const auto& p : observer.probes)
    if (p.event.connection.target == target && p.event.heartbeat) found.push_back(p);
  return found;
}

/// The backend `connection` was last healthy on by `until`: the one a down event at `until` lost.
/// 0 if it was never healthy.
inline int backend_pid_before(const RecordingObserver& observer, const ConnectionRef& connection,
                              RecordingObserver::Clock::time_point until) {
  int pid = 0;
  for (const auto& h : observer.healthy)
    if (h.event.connection.target == connection.target &&
        h.event.connection.index == connection.index && h.at <= until)
      pid = h.event.server.backend_pid;
  return pid;
}

/// When a round trip was sent: the observer hears of it when its answer came.
inline RecordingObserver::Clock::time_point sent_at(
    const RecordingObserver::Stamped<ProbeEvent>& probe) {
  return probe.at -
         std::chrono::duration_cast<RecordingObserver::Clock::duration>(probe.event.duration);
}

/// How many heartbeats to `target` were sent after `from` and answered by `until`: how long the
/// watchdog took to see a change, counted in what it controls (its heartbeats), not in wall time.
inline std::size_t heartbeats_sent_between(const RecordingObserver& observer,
                                           const std::string& target,
                                           RecordingObserver::Clock::time_point from,
                                           RecordingObserver::Clock::time_point until) {
  std::size_t count = 0;
  for (const auto& p : heartbeats_of(observer, target))
    if (sent_at(p) > from && p.at <= until) ++count;
  return count;
}

}  // namespace pgwd::testing
