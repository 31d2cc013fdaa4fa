#pragma once

/// \file
/// Connecting a target: its hosts walked one by one until one gives a session that fits. What
/// is done with the session afterwards is pg/pg_session.hpp's; who asks is pg/pg_link.hpp (a
/// watched connection) or pg/session_opener.hpp (the pool's openings).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event/activity_notes.hpp"
#include "health/link.hpp"
#include "health/role_requirement.hpp"
#include "pg/connector.hpp"
#include "pg/conninfo.hpp"
#include "pg/host_list.hpp"
#include "pg/pg_session.hpp"

namespace pgwd {

/// How a target connects: prepared once per target (prepare_target, target_settings.hpp).
struct LinkSettings {
  /// The user's conninfo plus keepalive/application_name defaults, without the host list and
  /// target_session_attrs, which the walk applies itself host by host.
  Conninfo conninfo;
  std::vector<HostEntry> hosts;  ///< at least one
  RoleRequirement role = RoleRequirement::any;
  Nanos host_timeout{};   ///< deadline of one host of an attempt
  std::string setup_sql;  ///< run after each connect (LISTEN ...); empty for none
  /// What the sessions it makes ask and how they read; its dsn_for_redaction also redacts the
  /// walk's own messages.
  SessionSettings session;
};

/// The end of a walk, always from a loop callback of the walk's own (or of the session it is
/// setting up), as the walk's last action.
class WalkCallbacks {
 public:
  virtual void on_resolved() = 0;  ///< a host name resolved (or none needed); connecting now
  /// A session, idle and not watched, whose callbacks still point at the walk: the receiver
  /// points them at itself (PgSession::set_callbacks) and keeps the session at least until this
  /// callback has returned (it may be called from inside the session's own callback).
  virtual void on_connected(std::unique_ptr<PgSession> session, const Connected& connected) = 0;
  virtual void on_connect_failed(const ConnectFailed& failed) = 0;

 protected:
  ~WalkCallbacks() = default;
};

/// One connect attempt of a target, again and again: start() walks the host list, one PGconn per
/// host under its own deadline (libpq walks a list inside one PQconnectPoll and cannot skip a
/// host that hangs). Each host's name is resolved by the loop's Resolver and passed as
/// hostaddr; the PGconn is connected by the Connector (on the watch loop or a connector thread);
/// the role is checked (target_session_attrs, prefer-standby in two passes) and setup_sql run
/// (PgSession::set_up) here. A host that fails adds "host:port: why" to the failure; a wrong
/// password or a missing database ends the walk, as in libpq. Nothing blocks, and nothing is
/// reported from inside start() or cancel(). Not copyable or movable (registered with the loop).
class HostWalk final : private SessionCallbacks {
 public:
  /// `settings`, `resolver`, `connector`, `notes` and `who` (names the connection in
  /// slow-callback reports; the sessions keep it too) must outlive the walk and its sessions.
  HostWalk(const LinkSettings& settings, Loop& loop, Resolver& resolver, Connector& connector,
           ActivityNotes& notes, const ConnectionRef& who, WalkCallbacks& callbacks);
  ~HostWalk();
  HostWalk(const HostWalk&) = delete;
  HostWalk& operator=(const HostWalk&) = delete;

  /// Cancels a walk in flight and starts over from the first host, from the loop. Ends in
  /// on_connected or on_connect_failed (on_resolved on the way, for each host that gets past its
  /// name).
  void start();
  /// Stops the walk in flight, if any: nothing more is reported. May be called from inside the
  /// walk's callbacks.
  void cancel();

 private:
  enum class Phase {
    closed,      ///< nothing in flight
    resolving,   ///< name lookup in flight
    polling,     ///< the Connector's attempt (PQconnectPoll steps) in flight
    setting_up,  ///< the session's set_up() round trip in flight
  };

  void try_host();
  void host_failed(const Failure& failure);
  void on_lookup_done(Resolution resolution);
  void start_connect(const Conninfo& conninfo);
  void on_attempt_done(AttemptOutcome outcome);
  /// The host's deadline: a last look at what the attempt has already received, then
  /// connect_timeout.
  void on_host_deadline();
  Failure host_timeout_failure() const;
  /// `late`: taken by the deadline's last look, with no time left for another round trip.
  void finish_connect(PgConnPtr conn, std::vector<Notice> notices, bool late);
  /// False (and the host failed with wrong_role) if the server's role does not fit.
  bool role_fits();
  void connected();  ///< setup done: the session goes to on_connected
  /// Closes the host's session, keeping what it read; destroyed at the next start() (we may be
  /// inside its callback).
  void retire_session();
  void keep(Arrivals arrived);
  /// What the server said while a host failed to connect (AttemptOutcome::notices).
  void keep_startup_notices(std::vector<Notice> notices);
  std::string clean(std::string_view message) const;

  // SessionCallbacks: the end of set_up().
  void on_readable() override {}  // never: the session is not watched idle while set up
  void on_probe_done(const ProbeDone& done) override;

  const LinkSettings& settings_;
  Loop& loop_;
  Resolver& resolver_;
  Connector& connector_;
  ActivityNotes& notes_;
  const ConnectionRef& who_;
  WalkCallbacks& callbacks_;
  TimerPtr host_deadline_;
  TimerPtr start_timer_;  ///< start() begins from the loop
  Phase phase_ = Phase::closed;
  std::size_t host_index_ = 0;
  bool standby_pass_ = false;                ///< prefer-standby's first pass: standbys only
  std::vector<std::string> host_failures_;   ///< "host:port: why" for each host tried
  std::unique_ptr<ConnectAttempt> attempt_;  ///< the host's attempt in flight
  bool at_deadline_ = false;                 ///< on_host_deadline's last look is running
  std::unique_ptr<Lookup> lookup_;
  std::unique_ptr<Lookup> previous_lookup_;          ///< may still be running its callback
  std::unique_ptr<PgSession> session_;               ///< the host's session while it is set up
  std::vector<std::unique_ptr<PgSession>> retired_;  ///< closed; may still be on the stack
  Arrivals arrived_;  ///< what the hosts said (notices), delivered with the walk's end
};

}  // namespace pgwd
