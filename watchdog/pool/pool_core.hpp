#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "health/backoff.hpp"
#include "health/random.hpp"
#include "pgwd/lending.hpp"
#include "pgwd/pool.hpp"
#include "pool/pool_series.hpp"
#include "pool/pooled_connection.hpp"

namespace spdlog {
class logger;
}

namespace pgwd {

/// The pool's state and logic, shared (shared_ptr) by the Pool, its Leases and the callbacks
/// it gives the watchdog, so that whichever is last frees it.
///
/// Locking: one mutex guards everything below it. It is never held while calling the
/// watchdog (lend, take-back), libpq, or a user's callback, so the watchdog's callbacks
/// (on_death, on_server_lost, on the watchdog's thread) may take it at any time without
/// deadlock; they only move idle connections to `doomed_` and wake the housekeeper, which
/// takes them back and closes them on its own thread.
class PoolCore : public std::enable_shared_from_this<PoolCore> {
 public:
  using LendFunction = std::function<Loan(PGconn*, LendOptions)>;
  using AsyncDone = std::function<void(Lease, std::exception_ptr)>;

  PoolCore(LendFunction lend, PoolOptions options, std::shared_ptr<SeriesStore> metrics);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  /// Starts the housekeeper thread (opens min_idle at once).
  void start();
  /// Fails waiters with PoolClosed, takes back and closes every idle connection, joins the
  /// housekeeper. Leases still out close their connection when released.
  void stop();

  Lease acquire();
  void acquire_async(AsyncDone done);
  /// From a Lease being released (any thread).
  void give_back(std::unique_ptr<PooledConnection> connection, bool discard) noexcept;

  PoolStats stats() const;
  const std::string& name() const noexcept { return options_.name; }

 private:
  using Clock = std::chrono::steady_clock;
  struct AsyncWaiter {
    AsyncDone done;
    Clock::time_point started;
    Clock::time_point deadline;
  };

  // --- checkout (pool_core.cpp) ---
  /// Takes idle connections (most recently returned first) until the watchdog vouches for one;
  /// drops the dead ones, skips those with a probe in flight. Unlocks while taking back.
  /// `saw_busy` tells the caller to look again soon (no event says when a probe ends).
  std::optional<Lease> checkout_locked(std::unique_lock<std::mutex>& lock, bool& saw_busy);
  /// Lends a connection that is fit for reuse and puts it in the idle stack, or hands it
  /// straight to a waiting asynchronous acquirer. Not under the lock.
  void make_available(std::unique_ptr<PooledConnection> connection);
  LendOptions lend_options(std::uint64_t id);
  void on_death(std::uint64_t id, const LoanDeath& death);
  void on_server_lost(const ServerLost& lost);
  bool expired(const PooledConnection& connection, Clock::time_point now) const;
  /// Connections to open now: enough for the waiters and min_idle, within max_size.
  std::size_t deficit_locked() const;
  void publish_sizes_locked();
  std::string timeout_message_locked(std::chrono::nanoseconds waited) const;
  void count_closed_locked(std::string_view cause);
  /// Out of use for `cause` (counted now): the housekeeper takes it back and closes it.
  void doom_locked(std::unique_ptr<PooledConnection> connection, std::string cause);

  // --- background work (pool_housekeeping.cpp) ---
  void housekeeping_loop();
  /// Opens one connection with blocking PQconnectdb; null (and last_connect_error_) on failure.
  PgConnPtr open_connection();
  void complete_async(AsyncWaiter waiter, Lease lease, std::exception_ptr error) noexcept;

  const LendFunction lend_;
  const PoolOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<SeriesStore> metrics_store_;  // outlives metrics_
  PoolSeries metrics_;

  mutable std::mutex mutex_;
  std::condition_variable available_;  // sync acquirers: a connection is idle, or stopping
  std::condition_variable work_;       // the housekeeper: something to open, close or expire
  std::vector<std::unique_ptr<PooledConnection>> idle_;  // back: most recently returned
  std::vector<std::unique_ptr<PooledConnection>> doomed_;  // taken out of idle_: to take back and close (housekeeper)
  std::deque<AsyncWaiter> async_waiters_;
  std::size_t live_ = 0;         // connections that exist: idle, in use, being checked, doomed
  std::size_t in_use_ = 0;       // leased
  std::size_t opening_ = 0;      // being opened by the housekeeper
  std::size_t sync_waiters_ = 0;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
  Clock::time_point retry_connect_at_{};
  std::string last_connect_error_;
  PoolStats counters_;  // the cumulative fields only
  SystemRandom random_;
  Backoff backoff_;
  std::thread housekeeper_;
};

}  // namespace pgwd
