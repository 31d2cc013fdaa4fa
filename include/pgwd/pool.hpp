#pragma once

/// \file
/// A connection pool built on lending (pgwd/lending.hpp): every idle connection is lent to the
/// watchdog, so that acquire() knows without a round trip whether it is still alive, and a
/// connection that dies while idle is dropped (and replaced in the background) before anyone
/// asks for it.
///
/// Threading: acquire() and every method of Pool may be called from any thread, except the
/// watchdog's own (acquire may wait). A Lease may be used, moved and destroyed on any thread
/// (one thread at a time, as any object). Connections are opened on the watchdog's loop without
/// blocking, as the watchdog opens its own (each host under connect_timeout, names resolved by
/// its resolver, its connector threads if any), and handed to a thread the pool owns, its
/// housekeeper: never on the caller's thread.
///
/// Lifetimes: the watchdog (Watchdog or WatchdogThread) must outlive the Pool. A Lease may
/// outlive the Pool: its connection is then closed when the Lease is destroyed.

#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pgwd/export.hpp"
#include "pgwd/lending.hpp"

namespace spdlog {
class logger;
}

namespace pgwd {

class Watchdog;
class WatchdogThread;

/// acquire() waited `acquire_timeout` and got no connection. The message names the pool, its
/// size (in use, idle, being opened, maximum), the time waited and, if connecting fails, the
/// last connect error (never a password).
class PGWD_EXPORT PoolTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad PoolOptions; the message names the option. Thrown by Pool's constructor.
class PGWD_EXPORT InvalidPoolOptions : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// acquire() on a pool that is being destroyed.
class PGWD_EXPORT PoolClosed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PoolOptions {
  /// libpq conninfo or URI of every connection of the pool. Required.
  std::string dsn;
  /// The pool's name: the lending target (LendOptions::target) and the `pool` label of the
  /// pool's metrics. Required, unique per metrics store.
  std::string name;
  /// Connections at most (idle + in use + being opened). At least 1.
  std::size_t max_size = 10;
  /// Idle connections kept open from the start (opened in the background). At most max_size.
  /// Whatever min_idle says, a connection lost to the server (a death, the server gone, a
  /// connection broken on return) or retired by max_lifetime is opened again in the
  /// background: the pool keeps the size its use gave it. One closed on purpose (discard(), a
  /// lend the watchdog refused, the pool closing) is not.
  std::size_t min_idle = 0;
  /// How long acquire() waits for a connection before it throws PoolTimeout. At least 1 ms.
  std::chrono::milliseconds acquire_timeout{5000};
  /// A connection older than this is closed on return, or while idle (checked at least every
  /// max_lifetime / 4); zero: no limit.
  std::chrono::milliseconds max_lifetime{0};
  /// A connection given back inside a transaction is rolled back on the releasing thread; if
  /// the ROLLBACK gets no answer within this, the connection is discarded instead.
  std::chrono::milliseconds rollback_timeout{2000};
  /// Passed to LendOptions: the probe sent only when what arrived does not settle it, its
  /// deadline, and an optional heartbeat while idle (no statement unless heartbeat_query).
  std::string probe_query = "SELECT 1";
  std::chrono::milliseconds probe_timeout{5000};
  std::chrono::milliseconds heartbeat{0};
  std::string heartbeat_query;
  /// Deadline of each host of an opening (name lookup, TCP, TLS, authentication), kept by the
  /// watchdog's loop whatever the DSN says: a host that does not answer (a black hole) fails
  /// after this, and the next host of the DSN is tried. At least 1 ms.
  std::chrono::milliseconds connect_timeout{5000};
  /// Connections being opened at once, at most (at least 1): after a mass loss the pool
  /// reopens this many in parallel, without waiting for each in turn. After a failed opening
  /// (refused, 57P03, a timeout) one at a time, until one succeeds.
  std::size_t max_concurrent_opens = 4;
  /// Delay between failed connect attempts: doubles from initial to max, with jitter. Also how
  /// long the pool waits before trying again a server that says it is starting up (57P03),
  /// without doubling: that is not counted as a failure.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10000};
  /// Where the pool logs; spdlog's default logger if null.
  std::shared_ptr<spdlog::logger> logger;
};

/// Counters and sizes as of now, for tests and status pages (the metrics say the same).
struct PoolStats {
  std::size_t idle = 0;
  std::size_t in_use = 0;
  std::size_t opening = 0;
  std::size_t waiters = 0;
  std::uint64_t checkouts = 0;
  std::uint64_t checkouts_found_dead = 0;  ///< try_take_back() said dead at checkout
  std::uint64_t checkouts_found_busy = 0;  ///< a probe was in flight: another one was taken
  std::uint64_t dropped_while_idle = 0;    ///< on_death / on_server_lost / lifetime while idle
  std::uint64_t replaced = 0;              ///< connections closed by the pool, any cause
  std::uint64_t rollbacks = 0;             ///< ROLLBACKs sent on return
  std::uint64_t connect_failures = 0;      ///< failed openings, 57P03 not counted
  /// Openings the server refused with 57P03 (cannot connect now: starting up, shutting down,
  /// in recovery without hot standby): waited out, backoff_initial apart, not failures.
  std::uint64_t connects_server_starting = 0;
  std::uint64_t notifications = 0;  ///< NOTIFYs that arrived while idle, handed to leases
  /// Connections given back while every waiter had an opening of its own in flight: left idle
  /// for the next acquire, not handed to a waiter (docs/lending-and-pool.md).
  std::uint64_t given_to_next_asker = 0;
};

class PoolCore;           // internal
struct PooledConnection;  // internal

/// A connection checked out of the pool. Move-only. Destroying it gives the connection back:
/// rolled back if a transaction is open (bounded by rollback_timeout), discarded if broken
/// (CONNECTION_BAD, or a transaction status of UNKNOWN or ACTIVE), closed if older than
/// max_lifetime, else lent to the watchdog while idle.
class PGWD_EXPORT Lease {
 public:
  Lease() noexcept;
  ~Lease();
  Lease(Lease&&) noexcept;
  Lease& operator=(Lease&&) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  /// The connection; null for an empty (moved-from or released) lease.
  PGconn* get() const noexcept;
  PGconn* operator->() const noexcept { return get(); }
  explicit operator bool() const noexcept { return get() != nullptr; }

  /// NOTIFYs that arrived for this connection while it sat idle in the pool (LISTEN stays in
  /// effect across checkouts), in order. Those that arrive while leased are in libpq's queue
  /// (PQnotifies), as usual.
  const std::vector<LentNotification>& notifications() const noexcept;

  /// Gives the connection back now (as the destructor does); the lease is empty afterwards.
  void release() noexcept;
  /// Tells the pool not to reuse this connection (closed on release), e.g. after an error the
  /// caller knows leaves the session in a bad state.
  void discard() noexcept;

 private:
  friend class PoolCore;
  Lease(std::shared_ptr<PoolCore> core, std::unique_ptr<PooledConnection> connection,
        std::vector<LentNotification> notifications) noexcept;
  std::shared_ptr<PoolCore> core_;
  std::unique_ptr<PooledConnection> connection_;
  std::vector<LentNotification> notifications_;
  bool discard_ = false;
};

/// The pool. Not copyable or movable (callbacks of the watchdog refer to it).
class PGWD_EXPORT Pool {
 public:
  /// Over a watchdog on a thread of its own. Metrics go to its store (metrics()). Throws
  /// InvalidPoolOptions.
  Pool(WatchdogThread& watchdog, PoolOptions options);
  /// Over a watchdog on the host's loop (lending is thread-safe, so acquire() may still be
  /// called from any thread but the loop's). Throws InvalidPoolOptions.
  Pool(Watchdog& watchdog, PoolOptions options);
  /// Takes every idle connection back from the watchdog and closes it, cancels the openings in
  /// flight, stops the housekeeper thread.
  /// Waiting acquire() calls get PoolClosed. Leases still out are closed when released.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  Pool(Pool&&) = delete;
  Pool& operator=(Pool&&) = delete;

  /// A live connection (never one the watchdog knows is dead, never one with a probe in
  /// flight). Waits up to acquire_timeout for one to be returned or opened, then throws
  /// PoolTimeout. Throws PoolClosed if the pool is being destroyed. A waiter whose own opening
  /// is in flight is passed over by connections given back meanwhile (they go to the next
  /// asker) for at most twice the pool's usual opening time: docs/lending-and-pool.md.
  Lease acquire();

  /// Completion form for asynchronous hosts (pgwd/adapters/asio_pool.hpp builds on it): never
  /// blocks. `done` is called exactly once, with a lease or with the exception acquire() would
  /// have thrown: at once on the calling thread if a connection is idle, else later on the
  /// thread that gives one back or on the pool's housekeeper thread (a connection opened, the
  /// deadline). `done` must not block; it may call acquire_async() again.
  void acquire_async(std::function<void(Lease, std::exception_ptr)> done);

  PoolStats stats() const;
  const std::string& name() const noexcept;

 private:
  std::shared_ptr<PoolCore> core_;
};

}  // namespace pgwd
