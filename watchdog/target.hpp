#pragma once

#include <spdlog/logger.h>

#include <functional>
#include <memory>
#include <vector>

#include "event/activity_notes.hpp"
#include "health/heartbeat_rota.hpp"
#include "health/recovery_scout.hpp"
#include "health/server_identity_watch.hpp"
#include "health/watched_connection.hpp"
#include "metrics/store.hpp"
#include "metrics/target_series.hpp"
#include "pg/connector.hpp"
#include "target_settings.hpp"

namespace pgwd {

/// One configured target: its connections, their metrics and logs, and the host's observer. An
/// observer that throws is logged and otherwise ignored: an
/// exception must never unwind through the loop. Not copyable or movable.
///
/// The target, not each connection, keeps the rhythm: one heartbeat round trip per period for all
/// its connections (HeartbeatRota), and one scout attempt per scout_interval while they are down
/// (RecoveryScout), after which they all come back at once.
class Target final : private ConnectionEvents {
 public:
  /// Told, with this target's name, when one of its connections goes down or sees its server
  /// change role: the targets in front of it (TargetOptions::in_front_of) then probe at once.
  using AlertFront = std::function<void(const std::string& target)>;

  /// `name` is this target's claim on its name in the store, released by silence().
  /// `connector` (runs each connect attempt) must outlive the Target.
  Target(const TargetOptions& options, TargetSettings settings, Loop& loop, Resolver& resolver,
         Connector& connector, ActivityNotes& notes, Random& random, AttemptGate& gate,
         Store& store, std::unique_ptr<Store::Claim> name, Observer* observer, spdlog::logger& log,
         const LoopHistograms* shared_histograms = nullptr, AlertFront alert_front = {});
  ~Target() override;
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  void start();
  /// Stops reporting: no more events, logs or metric updates, the metric series are removed and
  /// the name's claim released. O(1) in the connections: they stay open, and whatever they do
  /// meanwhile (a loss, a reconnect) reaches nobody. Watchdog::remove_targets silences every
  /// target at once and retires them over several loop passes.
  void silence();
  /// silence(), then closes every connection (PQfinish: the costly part, linear in them). The
  /// Target itself is freed later (never inside one of its callbacks).
  void retire();

  const std::string& name() const noexcept { return name_; }
  /// TargetOptions::in_front_of.
  const std::string& in_front_of() const noexcept { return in_front_of_; }
  /// The target this one is in front of had an event: one heartbeat round trip at the next loop
  /// turn, however many times this is called before it. Only arms a timer, so it may be called
  /// from inside any callback.
  void probe_soon();
  std::vector<ConnectionState> states() const;

 private:
  // ConnectionEvents
  void on_healthy(const HealthyEvent& e) override;
  void on_down(const DownEvent& e) override;
  void on_reconnect_attempt(const ReconnectAttemptEvent& e) override;
  void on_connect_failed(const ConnectFailedEvent& e) override;
  void on_probe(const ProbeEvent& e) override;
  void on_notification(const NotificationEvent& e) override;
  void on_notice(const NoticeEvent& e) override;
  void on_role_change(const RoleChangeEvent& e) override;
  void on_state_change(const StateChangeEvent& e) override;
  void on_wakeup(const ConnectionRef& c) override;
  void on_server_refreshed(const ConnectionRef& c, const ServerInfo& server) override;
  /// Reports a change of the server behind the pool, once, if `server` shows one.
  void compare_server(const ConnectionRef& c, const ServerInfo& server);

  /// Calls the host's observer, if any, catching what it throws.
  template <typename Event>
  void tell(void (Observer::*method)(const Event&), const Event& event);

  std::string name_;
  std::string in_front_of_;
  TargetSettings settings_;
  Observer* observer_;
  spdlog::logger& log_;
  std::unique_ptr<Store::Claim> claim_;    // reset by silence()
  std::unique_ptr<TargetSeries> metrics_;  // reset by silence()
  struct PerConnection {
    bool reconnecting = false;          ///< the attempt in flight is a retry
    std::optional<Cause> last_failure;  ///< to log repeated identical failures quietly
  };
  std::vector<PerConnection> per_connection_;
  AlertFront alert_front_;
  ServerIdentityWatch server_behind_;
  HeartbeatRota heartbeat_;  // these three stopped by silence(); they read connections_
  RecoveryScout scout_;
  TimerPtr front_probe_;                                         ///< probe_soon()'s turn
  std::vector<std::unique_ptr<WatchedConnection>> connections_;  // last: they call back into us
};

}  // namespace pgwd
