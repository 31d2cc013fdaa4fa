#pragma once

/// \file
/// What a host asks the watchdog to watch: one conninfo, N connections, and how to treat them.
/// Defaults and ranges are docs/configuration.md's "Target keys"; the daemon's config file maps
/// one-to-one onto these fields.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgwd/export.hpp"

namespace pgwd {

using Duration = std::chrono::milliseconds;

/// What the conninfo points at, when it is not the server itself.
///
/// One value for PgBouncer, not one per pool_mode: what the watchdog must do is the same in
/// session and transaction pooling (one round trip right after login, the role asked in SQL, no
/// health before a query went through), and only what reaches an idle client differs, which the
/// watchdog cannot change. Nor is the mode detected: PgBouncer tells it only on its admin console,
/// which needs an admin user the watchdog should not have.
enum class Pooler {
  none,       ///< the server itself, or a TCP proxy (HAProxy): the backend is the one logged in to
  pgbouncer,  ///< PgBouncer, session or transaction pooling
};

PGWD_EXPORT std::string_view to_string(Pooler pooler) noexcept;
/// The names of to_string(); nullopt for anything else.
PGWD_EXPORT std::optional<Pooler> parse_pooler(std::string_view name) noexcept;

struct TargetOptions {
  /// Name used in metrics (`target` label), logs and events. Never the DSN: it may hold a password.
  std::string name;
  /// libpq conninfo, `key=value` or URI form. Several hosts (`host=a,b port=5432,5433`) are tried
  /// in order, each with its own connect_timeout, until one satisfies `target_session_attrs`
  /// (any, read-write, read-only, primary, standby, prefer-standby), which the watchdog also
  /// re-checks after every probe: a connection whose server changed role is replaced.
  std::string conninfo;
  /// Idle connections opened and watched for this target.
  int connections = 1;
  /// Sent only when the OS reported activity that reading the input did not explain (the
  /// heartbeat sends no statement: see `heartbeat`).
  std::string probe_query = "SELECT 1";
  /// A probe or heartbeat without an answer by then means the backend is hung: down with
  /// `probe_timeout`.
  Duration probe_timeout = std::chrono::seconds(5);
  /// Deadline for one host of an attempt (DNS + TCP + TLS + auth + LISTEN). libpq ignores its own
  /// `connect_timeout` in non-blocking mode, so the watchdog enforces this itself. What the
  /// server had sent by then counts, even if the loop had not yet run the socket's callback.
  Duration connect_timeout = std::chrono::seconds(5);
  /// One round trip per target every 6/8 to 7/8 of `heartbeat` (so its answer is in before
  /// `heartbeat` of silence has passed), on one idle connection in rotation, at a random phase
  /// per target: a lone Sync message, which the server answers (ReadyForQuery) without
  /// running, logging or counting anything: no statement. It shows a hung server
  /// (down with `probe_timeout` within heartbeat + probe_timeout: 10 s with the defaults) and
  /// brings back the role, which PostgreSQL never pushes to an idle session (a promotion shows
  /// within one heartbeat). Before PostgreSQL 14 the server reports no role, so there it is
  /// `SELECT pg_is_in_recovery()`, a statement. One connection's own hung backend is seen at
  /// its turn: within connections x heartbeat + probe_timeout. 0 = no round trip at all while
  /// idle (only keepalive and OS-reported activity).
  Duration heartbeat = std::chrono::seconds(5);
  /// Empty (default): the heartbeat is the lone Sync above. Otherwise the heartbeat sends this
  /// statement instead (a check that must touch a table, say): logged and counted by the server
  /// like any statement; the role still comes from ParameterStatus (PostgreSQL 14+).
  std::string heartbeat_query;
  /// `pgbouncer`: the conninfo points at PgBouncer, which answers the login from cached
  /// parameters before any server is involved and links a client to a server only at its first
  /// message. So each connection makes one round trip right after login, before it counts as
  /// healthy: it is then linked to a server in session pooling (that server's FATAL and
  /// PgBouncer's "server conn crashed?" reach it at once), and a query is known to run. The role
  /// at login is PgBouncer's cached welcome message, possibly older than a promotion, so it is
  /// never used: that round trip and every heartbeat ask `SELECT pg_is_in_recovery(),
  /// current_setting('default_transaction_read_only')` along with the server's address and
  /// postmaster start time (a statement, unlike the lone Sync of a direct target), and
  /// heartbeat_query cannot be set. In transaction pooling an idle connection is linked to
  /// nothing, so the heartbeat is all that notices a server gone; a server that answers with
  /// another start time or address than before is reported (Observer::on_server_change).
  ///
  /// Declared, not detected: PgBouncer answers a login with the server's cached parameters and
  /// shows nothing of itself on a client connection (its `SHOW` commands exist only on its admin
  /// console, which needs a user the watchdog should not have), and guessing wrong would make a
  /// direct target send statements it never sends.
  Pooler pooler = Pooler::none;
  /// A TCP proxy (HAProxy, a cloud load balancer) stands between the watchdog and the server.
  /// Changes nothing in how the target is watched; it is what the daemon's --check-config needs
  /// to warn that with heartbeat 0 such a target cannot see a half-open or hung server (the
  /// keepalives test only the leg to the proxy) or the proxy handing over a server of another
  /// role. Declared for the same reason as `pooler`: nothing on the wire tells a proxy apart.
  bool proxied = false;
  /// The name of the target this one reaches through its pooler or proxy (a direct target on the
  /// same server), or empty. When a connection of that target goes down or sees its server change
  /// role, this target sends a heartbeat round trip at once (one per loop turn, however many
  /// events came in it), heartbeat 0 or not: a transaction pool shows an idle client nothing,
  /// and the direct target is the first to know. A name no target has (yet) is no error.
  std::string in_front_of;
  /// TCP keepalive and user timeout, applied unless the conninfo sets them. They let the kernel
  /// report a dead peer (ETIMEDOUT) without the watchdog sending a single query.
  Duration keepalives_idle = std::chrono::seconds(5);
  Duration keepalives_interval = std::chrono::seconds(2);
  int keepalives_count = 3;
  Duration tcp_user_timeout = std::chrono::seconds(11);
  /// Reconnect delays: exponential from initial to max, each one jittered to [d/2, d].
  Duration backoff_initial = std::chrono::milliseconds(100);
  Duration backoff_max = std::chrono::seconds(30);
  /// While connections wait out their backoff after a failure that may fix itself (anything but
  /// a wrong password or a missing database), one of them tries at once every `scout_interval`;
  /// when any connection is back, the others waiting retry within min(backoff_initial,
  /// scout_interval), still through the connect slots. So a target is back within about
  /// scout_interval of its server answering again, not backoff_max. An attempt still on its way
  /// at a turn (held by a proxy that retries a refused server, or a SYN lost in a black hole)
  /// gets a second attempt beside it instead, renewed every scout_interval; the first to connect
  /// wins (counted in pgwatchdog_connect_hedges_total). After an immediate shutdown or a crash
  /// (the server ends every session) the connections make no attempt of their own before the
  /// scout's turn. 0 = no scout: each connection keeps its own backoff. 250 ms: a server that
  /// answers again just after a turn waits for the next one, so the period plus one connect is
  /// how much later than the luckiest poller the target can be back; at 500 ms that overran the
  /// half second a 1 s poller is allowed (docs/ha-stack.md).
  Duration scout_interval = std::chrono::milliseconds(250);
  /// Channels to LISTEN on after every (re)connect; NOTIFY messages are delivered to the observer.
  std::vector<std::string> listen_channels;

  /// Same target, same settings: a config reload leaves such a target's connections untouched.
  bool operator==(const TargetOptions&) const = default;
};

}  // namespace pgwd
