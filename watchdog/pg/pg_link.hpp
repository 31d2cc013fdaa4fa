#pragma once

/// \file
/// The Link a watched connection drives (health/link.hpp): a HostWalk (pg/host_walk.hpp) that
/// connects, then the PgSession (pg/pg_session.hpp) it produced, to which every Session method
/// goes.

#include <memory>
#include <optional>

#include "event/activity_notes.hpp"
#include "health/link.hpp"
#include "pg/connector.hpp"
#include "pg/host_walk.hpp"
#include "pg/pg_session.hpp"

namespace pgwd {

/// A Link over libpq on the Loop interface: connect() runs the host walk; once it produced a
/// session, the session reports straight to the link's callbacks. Between a connect() and the
/// session (and after close()), the Session methods answer "not connected", reported from the
/// loop like the session's own. Not copyable or movable (registered with the loop).
class PgLink final : public Link, private WalkCallbacks {
 public:
  /// `who` names the connection in slow-callback reports; it, `settings`, `resolver`,
  /// `connector` and `notes` must outlive the link.
  PgLink(const LinkSettings& settings, Loop& loop, Resolver& resolver, Connector& connector,
         ActivityNotes& notes, const ConnectionRef& who, LinkCallbacks& callbacks);
  ~PgLink() override;
  PgLink(const PgLink&) = delete;
  PgLink& operator=(const PgLink&) = delete;

  void connect() override;
  void watch_idle() override;
  Inspection inspect() override;
  void probe() override;
  void heartbeat() override;
  void close() override;
  Arrivals take_arrivals() override;
  std::optional<ProbeDone> read_answer() override;
  ServerInfo server_info() const override;

 private:
  // WalkCallbacks
  void on_resolved() override;
  void on_connected(std::unique_ptr<PgSession> session, const Connected& connected) override;
  void on_connect_failed(const ConnectFailed& failed) override;

  /// probe() and heartbeat() with no session: on_probe_done, from the loop.
  void not_connected();

  LinkCallbacks& callbacks_;
  HostWalk walk_;
  TimerPtr not_connected_;
  std::unique_ptr<PgSession> session_;
  /// The session a connect() replaced: closed, and possibly still on the stack (connect() may
  /// come from inside its callback).
  std::unique_ptr<PgSession> previous_session_;
};

}  // namespace pgwd
