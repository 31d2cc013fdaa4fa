#pragma once

/// \file
/// What the watchdog tells its observer. Every event names the target and the connection's
/// index within it (0..connections-1). Strings are copies: keep them as long as you like.
/// Messages come from the server or libpq and never contain the password.

#include <chrono>
#include <optional>
#include <string>

#include "pgwd/connection_state.hpp"
#include "pgwd/export.hpp"

namespace pgwd {

struct ConnectionRef {
  std::string target;
  int index = 0;
};

/// Facts the server reported at connect (ParameterStatus) and the backend serving us.
struct ServerInfo {
  int backend_pid = 0;
  int server_version = 0;      ///< e.g. 150020
  std::string host;            ///< "host:port" of the DSN's host list entry this connection is on
  std::string in_hot_standby;  ///< "on"/"off"; empty before PostgreSQL 14
  std::string default_transaction_read_only;  ///< "on"/"off"; empty before PostgreSQL 14
  /// Through a pooler (TargetOptions::pooler) only, from the role question each round trip
  /// asks, so that they name the server that answered and not the pooler; empty otherwise.
  /// `pg_postmaster_start_time()` in seconds since the epoch, as the server wrote it.
  std::string server_started;
  /// `inet_server_addr():port` of the server that answered ("local:port" over a Unix socket).
  std::string server_address;
};

/// A connection is connected and watched: after its first connect or a reconnect.
struct HealthyEvent {
  ConnectionRef connection;
  ServerInfo server;
  int attempt = 1;  ///< attempts it took, counted from the loss (or from the start)
  /// From the moment the loss was detected to now; empty for the first connect.
  std::optional<std::chrono::nanoseconds> outage;
};

/// A connection that was connected is lost.
struct DownEvent {
  ConnectionRef connection;
  Cause cause = Cause::closed;
  std::string sqlstate;  ///< empty when the server said nothing (EOF, timeout)
  std::string message;
};

/// A reconnect attempt starts (after its backoff delay).
struct ReconnectAttemptEvent {
  ConnectionRef connection;
  int attempt = 1;
};

/// A (re)connect attempt failed; the next one follows after `retry_in` at the latest: sooner if
/// the target's scout sends this connection, or another connection of the target is back
/// (TargetOptions::scout_interval).
struct ConnectFailedEvent {
  ConnectionRef connection;
  int attempt = 1;
  Cause cause = Cause::connect_failed;
  std::string sqlstate;
  std::string message;
  std::chrono::nanoseconds retry_in{0};
};

enum class ProbeResult { ok, error, timeout };
PGWD_EXPORT std::string_view to_string(ProbeResult result) noexcept;

struct ProbeEvent {
  ConnectionRef connection;
  ProbeResult result = ProbeResult::ok;
  std::chrono::nanoseconds duration{0};
  /// The target's heartbeat (a round trip that is no statement), not the probe query sent after
  /// unexplained activity.
  bool heartbeat = false;
};

/// NOTIFY received on a watched connection (one that LISTENs).
struct NotificationEvent {
  ConnectionRef connection;
  std::string channel;
  std::string payload;
  int sender_pid = 0;
};

/// NOTICE/WARNING the server sent on a watched connection.
struct NoticeEvent {
  ConnectionRef connection;
  std::string severity;  ///< non-localized: NOTICE, WARNING, ...
  std::string sqlstate;
  std::string message;
};

/// The server behind a connection changed role (a standby promoted, a primary demoted), as seen
/// after a heartbeat or a probe: PostgreSQL tells an idle session nothing (a new value rides
/// before the ReadyForQuery of its next round trip), so the target's heartbeat bounds how late
/// this comes.
struct RoleChangeEvent {
  ConnectionRef connection;
  std::string in_hot_standby;  ///< now
  std::string previous;        ///< before
};

/// How the server behind a pooler changed between two round trips of a target.
enum class ServerChange {
  restart,       ///< the same address, a postmaster started since: a restart behind the pool
  other_server,  ///< another address answers: a failover or switchover behind the pool
};
PGWD_EXPORT std::string_view to_string(ServerChange change) noexcept;

/// The server behind a pooled target (TargetOptions::pooler) is not the one that answered
/// before. In transaction pooling, the only way a restart or failover there is seen at all: the
/// next query simply gets a new server connection, and no idle client hears a thing. Reported
/// once per target and change, by the connection whose round trip showed it first.
struct ServerChangeEvent {
  ConnectionRef connection;
  ServerChange change = ServerChange::restart;
  ServerInfo previous;  ///< the server that answered before
  ServerInfo now;       ///< the one that answers now
};

struct StateChangeEvent {
  ConnectionRef connection;
  ConnectionState from = ConnectionState::resolving;
  ConnectionState to = ConnectionState::resolving;
};

}  // namespace pgwd
