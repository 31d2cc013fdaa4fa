#pragma once

/// \file
/// The life cycle of one watched connection (docs/design.md §5) and why it leaves `healthy`.

#include <string_view>

#include "pgwd/export.hpp"

namespace pgwd {

enum class ConnectionState {
  waiting,     ///< queued for a connect slot (WatchdogOptions::max_concurrent_connects): before
               ///< the first attempt, and after each backoff delay
  resolving,   ///< looking up the host name before an attempt, without blocking (libpq's lookup
               ///< would block)
  connecting,  ///< PQconnectPoll in progress, then LISTEN if asked; bounded by connect_timeout
  healthy,     ///< idle and watched for readability; nothing is sent until the OS reports activity
  inspecting,  ///< the OS reported activity: reading what came (lasts one callback, never seen
               ///< idle)
  probing,     ///< the probe query is in flight, bounded by probe_timeout
  down,        ///< just lost: socket unregistered, cause recorded (lasts one callback)
  backoff,     ///< waiting, jittered and growing, before the next attempt
  stopped,     ///< final: closed for good (the target was removed or the watchdog is shutting
               ///< down); nothing is armed or sent and no event follows
};

/// Why a connection is down, or why an attempt to connect failed.
enum class Cause {
  server_shutdown,       ///< FATAL 57P01: pg_terminate_backend, a smart or fast shutdown (a
                         ///< planned stop or switchover)
  immediate_shutdown,    ///< WARNING 57P01 (a NoticeResponse, PostgreSQL 14+): `pg_ctl stop -m
                         ///< immediate`, e.g. Patroni demoting a primary that lost its lock
  server_crash,          ///< 57P02: another backend crashed and the server is restarting (also
                         ///< any immediate stop before PostgreSQL 14); or FATAL 57P01 "unexpected
                         ///< postmaster exit": the postmaster died (kill -9, OOM killer)
  cannot_connect_now,    ///< 57P03: the server is starting up, shutting down or recovering
  idle_session_timeout,  ///< 57P05: idle_session_timeout ended the session
  server_error,          ///< any other FATAL/PANIC the server sent on an idle connection
  pooler_server_lost,    ///< PgBouncer: 08P01 "server conn crashed?": the server connection this
                         ///< one was linked to is gone (session pooling), without a word from
                         ///< the server (kill -9, a network fault behind the pooler)
  pooler_login_failing,  ///< PgBouncer: 08P01 "server login has been failing": no server, and
                         ///< logging in to one keeps failing
  pooler_queue_timeout,  ///< PgBouncer: 08P01 "query_wait_timeout": no server came free in time
  closed,                ///< EOF or reset without an explanation from the server
  timed_out,             ///< the kernel gave up on the peer (keepalive / TCP_USER_TIMEOUT)
  probe_failed,          ///< the probe query returned an error on a live connection
  probe_timeout,         ///< the probe got no answer within probe_timeout
  dns,                   ///< the host name did not resolve
  connect_timeout,       ///< the attempt did not finish within connect_timeout
  auth_failed,           ///< 28P01 / 28000: wrong password or no pg_hba entry
  database_missing,      ///< 3D000
  too_many_clients,      ///< 53300
  connect_failed,        ///< any other failed attempt (refused, unreachable, ...)
  wrong_role,            ///< the server's role does not satisfy the DSN's target_session_attrs
};

PGWD_EXPORT std::string_view to_string(ConnectionState state) noexcept;
PGWD_EXPORT std::string_view to_string(Cause cause) noexcept;

}  // namespace pgwd
