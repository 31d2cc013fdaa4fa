#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/health_state.hpp"
#include "pgwd/observer.hpp"
#include "pgwd/target_options.hpp"

namespace pgwd::daemon {

/// A target as a whole: up (a connection is up), down (none is, after the first attempt ended),
/// or pending (none is, and the first connect attempt has not ended yet).
enum class TargetState { up, down, pending };
/// What the server behind a target is, as its in_hot_standby says. Unknown while the target is
/// not up (what it was before an outage says nothing about the server it comes back to), and
/// before the server reports it (PostgreSQL before 14 reports no in_hot_standby at connect).
enum class ServerRole { primary, standby, unknown };
std::string_view to_string(TargetState state);
std::string_view to_string(ServerRole role);

/// One target as the status page, the JSON API and the health checks of /targets/ see it: the
/// one snapshot all three read (StatusBoard::snapshot, StatusBoard::copy_of).
struct TargetStatus {
  std::string name;
  std::vector<ConnectionState> connections;  ///< by index
  bool attempted = false;                     ///< a first connect attempt has ended
  std::optional<Cause> last_disconnect;
  std::string last_disconnect_sqlstate;
  std::chrono::system_clock::time_point last_disconnect_at{};
  /// The last failed connect attempt: why a target that is down stays down.
  std::optional<Cause> last_connect_failure;
  std::chrono::system_clock::time_point last_connect_failure_at{};
  /// While no connection is connected: since when (the target's start, or the loss).
  std::optional<std::chrono::steady_clock::time_point> down_since;
  /// "on", "off", or empty: not known (the target is not up, or the server has not reported
  /// it yet: PostgreSQL < 14). Cleared when the target goes down.
  std::string in_hot_standby;

  bool up() const;
  TargetState state() const;
  ServerRole role() const;
  /// Connections in `state`.
  std::size_t count(ConnectionState state) const;
};

/// The daemon's Observer: keeps, for the status page, what each target is doing, and tells
/// HealthState when every target has made its first connect attempt (readiness).
///
/// The loop thread writes it (observer callbacks, set_targets) and the HTTP threads copy it
/// (snapshot) under one mutex that is only ever held for a copy or an update of one entry: a page
/// waits at most for one such update, never for the loop to come round.
class StatusBoard final : public Observer {
 public:
  explicit StatusBoard(HealthState& health);

  /// The targets now configured (start-up, reload): new ones are added, gone ones dropped,
  /// the others keep their history. Loop thread.
  void set_targets(const std::vector<TargetOptions>& targets);

  /// A copy, in configuration order. Any thread.
  std::vector<TargetStatus> snapshot() const;
  /// A copy of one target, or nullopt if none has that name: O(1), whatever the number of
  /// targets (a proxy checks each target every second). Any thread.
  std::optional<TargetStatus> copy_of(std::string_view name) const;

  struct UpCount {
    std::size_t up = 0;     ///< targets with a connection up (TargetStatus::up)
    std::size_t total = 0;  ///< targets configured
  };
  /// Kept as the states change, so this costs no walk over the targets. Any thread.
  UpCount up_count() const;

  void on_healthy(const HealthyEvent& event) override;
  void on_down(const DownEvent& event) override;
  void on_connect_failed(const ConnectFailedEvent& event) override;
  void on_role_change(const RoleChangeEvent& event) override;
  void on_server_change(const ServerChangeEvent& event) override;
  void on_state_change(const StateChangeEvent& event) override;

 private:
  TargetStatus* find(const std::string& name);
  void attempted(TargetStatus& target);

  HealthState& health_;
  mutable std::mutex mutex_;
  std::vector<TargetStatus> targets_;
  // Position in targets_ by name: a search per event (or per target at a reload) made a reload
  // of 10,000 targets stall the loop 33-47 ms.
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t unattempted_ = 0;  // of the first set_targets' targets
  std::size_t up_ = 0;           // targets_ whose up() is true
  bool readiness_latched_ = false;
};

}  // namespace pgwd::daemon
