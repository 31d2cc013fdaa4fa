#pragma once

#include <chrono>
#include <functional>
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

}  // namespace pgwd::testing
