#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "health/backoff.hpp"
#include "health/random.hpp"
#include "pg/session_opener.hpp"
#include "pgwd/lending.hpp"
#include "pgwd/pool.hpp"
#include "pool/pool_series.hpp"
#include "pool/pooled_connection.hpp"
#include "pool/session_reset.hpp"

namespace spdlog {
class logger;
}

namespace pgwd {

/// The pool's state and logic, shared (shared_ptr) by the Pool, its Leases and the callbacks
/// it gives the watchdog, so that whichever is last frees it.
///
/// Locking: one mutex guards everything below it. It is never held while calling the
/// watchdog (lend, take-back, open), libpq, or a user's callback, so the watchdog's callbacks
/// (on_death, on_server_lost, an opening's outcome, on the watchdog's thread) may take it at any
/// time without deadlock; they only move connections to `doomed_` or `finished_opens_` and wake
/// the housekeeper, which does the rest on its own thread.
class PoolCore : public std::enable_shared_from_this<PoolCore> {
 public:
  using Clock = std::chrono::steady_clock;
  /// Watchdog::lend, and a function told when a probe of the loan has ended (see
  /// WatchdogInternals::lend).
  using LendFunction = std::function<Loan(PGconn*, LendOptions, std::function<void()>)>;
  using AsyncDone = std::function<void(Lease, std::exception_ptr)>;

  /// What the core works with, injected so that tests can script them.
  struct Parts {
    LendFunction lend;
    /// Opens a connection without blocking the caller (the watchdog's loop does it:
    /// WatchdogInternals::open_function); its outcome may come on any thread.
    OpenFunction open;
    /// The time, for deadlines, backoff and lifetimes; steady_clock::now if empty. The
    /// housekeeper thread and acquire() wait on steady_clock, so any other clock is for tests
    /// that drive the housekeeping themselves (run_housekeeping) and never call start().
    std::function<Clock::time_point()> now;
    /// Whether a connection given back is fit for reuse (rolled back if need be);
    /// reset_for_reuse if empty. Tests give back connections no server ever answered.
    std::function<ReturnedState(PGconn*, std::chrono::milliseconds)> reset;
  };

  PoolCore(Parts parts, PoolOptions options, std::shared_ptr<SeriesStore> metrics);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  /// Starts the housekeeper thread (opens min_idle at once).
  void start();
  /// Does the housekeeping due now (on the caller's thread, for tests without start()) and
  /// returns when it is next due (time_point::max: only when woken).
  Clock::time_point run_housekeeping();
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
  struct AsyncWaiter {
    AsyncDone done;
    Clock::time_point started;
    Clock::time_point deadline;
  };

  // --- checkout (pool_core.cpp) ---
  /// Takes idle connections (most recently returned first) until the watchdog vouches for one;
  /// drops the dead ones, skips those with a probe in flight. Unlocks while taking back.
  /// `saw_busy`: some had a probe in flight; the caller waits for the end of a probe
  /// (probe_ends_ moving on from what it was before this call) rather than polling.
  std::optional<Lease> checkout_locked(std::unique_lock<std::mutex>& lock, bool& saw_busy);
  /// Lends a connection that is fit for reuse and puts it in the idle stack, or hands it
  /// straight to a waiting asynchronous acquirer. Not under the lock. One `given_back` while
  /// passing_over_locked() wakes and serves no waiter: it is for whoever asks next.
  void make_available(std::unique_ptr<PooledConnection> connection, bool given_back = false);
  /// Whether a connection given back now passes the waiters over: every waiter has an opening
  /// of its own in flight, and none has waited longer than twice the pool's usual opening
  /// (pass_over_ends_locked). Each waiting thread then waits once, for its opening, while the
  /// connection goes to the next asker, mostly the thread that gave it back. Handed to a
  /// waiter instead, it woke one thread after another as the connections still being opened
  /// were passed between threads (bench/pool_comparison after a mass terminate: the p99).
  bool passing_over_locked(Clock::time_point now) const;
  /// When the oldest waiter stops being passed over (time_point::max with no waiter).
  Clock::time_point pass_over_ends_locked() const;
  /// When a waiter that began at `waiting_since` stops being passed over: twice the usual
  /// opening later (the one place that says so).
  Clock::time_point pass_over_ends_for_locked(Clock::time_point waiting_since) const;
  /// acquire() and acquire_async() calls waiting now.
  std::size_t waiters_locked() const;
  LendOptions lend_options(std::uint64_t id);
  void on_death(std::uint64_t id, const LoanDeath& death);
  void on_server_lost(const ServerLost& lost);
  /// A lent connection's probe answered (the watchdog's thread): wakes whoever waits for one.
  void on_probe_end();
  bool expired(const PooledConnection& connection, Clock::time_point now) const;
  /// Connections to open now: enough for the waiters, min_idle and the losses owed a
  /// replacement, within max_size.
  std::size_t deficit_locked() const;
  void publish_sizes_locked();
  std::string timeout_message_locked(std::chrono::nanoseconds waited) const;
  /// Counts a connection closed for `cause` and, if that was a loss (see below), owes the pool
  /// a replacement.
  void count_closed_locked(std::string_view cause);
  /// Out of use for `cause` (counted now): the housekeeper takes it back and closes it.
  void doom_locked(std::unique_ptr<PooledConnection> connection, std::string cause);

  // --- background work (pool_housekeeping.cpp) ---
  void housekeeping_loop();
  /// Everything due now, one thing at a time (the lock is let go around calls out); returns
  /// when something is next due.
  Clock::time_point housekeep_locked(std::unique_lock<std::mutex>& lock);
  /// Openings allowed in flight now: max_concurrent_opens, or one (a scout) since an opening
  /// failed, until one succeeds.
  std::size_t concurrent_opens_locked() const;
  /// Starts an opening (parts_.open): returns at once; its outcome comes to opened().
  void start_opening_locked(std::unique_lock<std::mutex>& lock);
  /// An opening's outcome, on whichever thread it comes: queued for the housekeeper.
  void opened(std::uint64_t ticket, OpenOutcome outcome);
  /// The housekeeper's part of an outcome: a new connection made available, or the failure
  /// counted (57P03, a server starting up, only waited out) and the next try scheduled.
  void take_opened_locked(std::unique_lock<std::mutex>& lock, Clock::time_point now);
  void complete_async(AsyncWaiter waiter, Lease lease, std::exception_ptr error) noexcept;

  Clock::time_point now() const { return now_(); }

  const LendFunction lend_;
  const OpenFunction open_;
  const std::function<ReturnedState(PGconn*, std::chrono::milliseconds)> reset_;
  const std::function<Clock::time_point()> now_;
  const PoolOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<SeriesStore> metrics_store_;  // outlives metrics_
  PoolSeries metrics_;

  mutable std::mutex mutex_;
  std::condition_variable available_;  // sync acquirers: a connection is idle, or stopping
  std::condition_variable work_;       // the housekeeper: something to open, close or expire
  std::vector<std::unique_ptr<PooledConnection>> idle_;  // back: most recently returned
  std::vector<std::unique_ptr<PooledConnection>>
      doomed_;  // taken out of idle_: to take back and close (housekeeper)
  std::deque<AsyncWaiter> async_waiters_;
  struct OpeningInFlight {
    std::function<void()> cancel;
    Clock::time_point started;
  };
  /// Openings in flight: what cancels each, and when it began, by ticket.
  std::map<std::uint64_t, OpeningInFlight> openings_;
  /// Outcomes not taken yet by the housekeeper, in the order they came.
  std::deque<std::pair<std::uint64_t, OpenOutcome>> finished_opens_;
  std::uint64_t next_ticket_ = 1;
  std::size_t live_ = 0;     // connections that exist: idle, in use, being checked, doomed
  std::size_t in_use_ = 0;   // leased
  std::size_t opening_ = 0;  // openings in flight (openings_ and finished_opens_)
  /// Idle connections a checkout has taken out of idle_ and is asking the watchdog for, with the
  /// lock let go: each will serve the waiter that took it unless found dead or busy.
  std::size_t checking_out_ = 0;
  /// When each acquire() now inside began (it counts as a waiter from its start).
  std::multiset<Clock::time_point> sync_waiters_;
  /// How long a successful opening takes, smoothed (a quarter of each new one); zero until the
  /// first. Twice this is how long a waiter may be passed over (passing_over_locked).
  Clock::duration opening_time_{};
  /// Connections lost to the server or to max_lifetime, not opened again yet. The pool keeps
  /// the size its use gave it: a pool whose 80 connections' backends were terminated starts
  /// opening 80 again at once, rather than only when the next burst asks, which then waits for
  /// the openings (bench/pool_comparison: the checkout p99 after a mass terminate). Closed on
  /// purpose (discard(), the pool closing, a refused lend) owes nothing.
  std::size_t owed_replacements_ = 0;
  std::uint64_t probe_ends_ = 0;  // probes of lent connections that answered, so far
  // The housekeeper's last checkout for an async waiter found only busy connections when
  // probe_ends_ was this; kNothingBusy otherwise. It looks again once probe_ends_ moves on.
  static constexpr std::uint64_t kNothingBusy = ~std::uint64_t{0};
  std::uint64_t busy_seen_at_ = kNothingBusy;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
  Clock::time_point retry_connect_at_{};
  std::string last_connect_error_;
  bool server_starting_ = false;  // the last opening got 57P03 (logged once per wait)
  /// An opening failed (refused, 57P03, a timeout...) and none has succeeded since: one opening
  /// at a time, a scout, until the server answers again. Every replacement owed after a restart
  /// (and every waiter) would otherwise knock max_concurrent_opens at a time on a server that is
  /// starting up, each costing it a backend that says 57P03, in every pool of a fleet.
  bool scouting_ = false;
  PoolStats counters_;            // the cumulative fields only
  SystemRandom random_;
  Backoff backoff_;
  std::thread housekeeper_;
};

}  // namespace pgwd
