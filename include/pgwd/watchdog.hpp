#pragma once

/// \file
/// pgwatchdog's entry point for hosts. A Watchdog lives on a loop the host owns and runs: a
/// libevent `event_base` (`Watchdog(event_base*, ...)`), or any loop through the Loop interface
/// (pgwd/loop.hpp; an asio adapter is in pgwd/adapters/asio.hpp). It never runs, exits or frees
/// that loop. Not thread-safe: construct it, call it and destroy it on the loop's thread. For a
/// host without a loop, WatchdogThread (pgwd/watchdog_thread.hpp) runs one on a thread of its own.
///
/// What may happen inside the observer's callbacks (they run on the loop's thread, inside the
/// watchdog's own callbacks), all of it tested:
///  - remove_target(), for any target, the one the event is about included: its connections are
///    closed at once (gone from pg_stat_activity), its series removed, and no event of it follows;
///  - add_target(), target_names(), connection_states(), metrics();
///  - destroying the Watchdog itself: nothing more is reported, every connection is closed, and
///    the rest of the watchdog is freed as soon as the callback returns (before control is back
///    in the loop), so the host may free its loop right after;
///  - throwing: the exception is logged and ignored (it never unwinds through the loop).
/// What must not happen inside them: blocking (every watched connection waits meanwhile), and
/// destroying the loop, or the loop adapter, the Watchdog runs on.

#include <chrono>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pgwd/connection_state.hpp"
#include "pgwd/export.hpp"
#include "pgwd/lending.hpp"
#include "pgwd/loop.hpp"
#include "pgwd/observer.hpp"
#include "pgwd/series_store.hpp"
#include "pgwd/target_options.hpp"

struct event_base;
namespace spdlog {
class logger;
}

namespace pgwd {

struct TargetSettings;

/// Bad options given to add_target: a malformed DSN, a duplicate name, a value out of range.
/// The message names the target and what is wrong, and never contains a password.
class PGWD_EXPORT InvalidTarget : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Bad WatchdogOptions given to the Watchdog's constructor; the message names the option.
class PGWD_EXPORT InvalidOptions : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Checks options the way add_target does, without connecting. Throws InvalidTarget.
PGWD_EXPORT void validate(const TargetOptions& options);

/// The conninfo with any password replaced by `***`, for display (`--check-config`, logs).
PGWD_EXPORT std::string redact_conninfo(std::string_view conninfo);

/// WatchdogOptions::connector_threads' upper bound.
inline constexpr std::size_t kMaxConnectorThreads = 64;

struct WatchdogOptions {
  /// Receives every event. Not owned; must outlive the Watchdog. May be null.
  Observer* observer = nullptr;
  /// Where the metrics are kept (pgwd/series_store.hpp; the host exports it: its text(), or
  /// pgwd::prometheus_collectable() for a prometheus-cpp Exposer); a private store is made if
  /// null. Several watchdogs may share one store, and a target name may then be used by only
  /// one of them (add_target says so).
  std::shared_ptr<SeriesStore> metrics;
  /// Where the watchdog logs; spdlog's default logger if null.
  std::shared_ptr<spdlog::logger> logger;
  /// The `loop` label of this watchdog's own series (event_loop_lag_seconds,
  /// slow_callbacks_total), unique per store. Empty: "watchdog", or "watchdog-2", ... when
  /// taken.
  std::string name;
  /// How late the loop runs is measured on every timer the watchdog arms anyway (deadlines,
  /// backoff, heartbeat, connect slots): an idle watchdog arms one heartbeat timer per target
  /// (none with TargetOptions::heartbeat 0) and wakes for nothing else. A
  /// non-zero interval adds a ticker of that period, so that lag is also measured while idle,
  /// at the cost of that many wake-ups (the daemon uses one).
  std::chrono::milliseconds loop_lag_interval = std::chrono::milliseconds::zero();
  /// A callback of the watchdog that runs at least this long is logged (a warning naming the
  /// target, the connection and what it was doing, e.g. SCRAM authentication inside
  /// PQconnectPoll) and counted in pgwatchdog_slow_callbacks_total{phase}.
  std::chrono::milliseconds slow_callback_threshold = std::chrono::milliseconds(10);
  /// DNS servers ("IP", "IP:PORT" or "[IPv6]:PORT") to ask instead of those in
  /// /etc/resolv.conf. /etc/hosts is read either way. Every connect attempt resolves afresh:
  /// nothing is cached. Checked by the constructor.
  std::vector<std::string> nameservers;
  /// Connect attempts in flight at once, across all targets (at least 1); the others wait
  /// their turn in `waiting`, the targets taking turns (a target's few attempts never wait
  /// behind another's reconnect storm), each target's oldest first. libpq computes SCRAM authentication on the loop (milliseconds of
  /// CPU per attempt), so a thousand connections returning together would otherwise stall the
  /// loop for a second.
  std::size_t max_concurrent_connects = 16;
  /// Threads that run connect attempts (PQconnectStartParams and every PQconnectPoll step,
  /// SCRAM's CPU included), each with a libevent loop of its own; a connection that reached
  /// CONNECTION_OK moves to the watch loop, which does everything after (LISTEN, the role
  /// check, watching). 0 (the default): attempts run on the watch loop, as before, and the
  /// Watchdog starts no thread behind its host's back. With SCRAM each attempt costs ~2.5 ms of
  /// CPU: 1 or 2 threads take that off the watch loop and spread it over the cores (the
  /// daemon uses as many as there are cores, at most 4). At most kMaxConnectorThreads. The
  /// threads are started by the constructor and joined by the destructor, which PQfinishes the
  /// attempts in flight rather than waiting for them. max_concurrent_connects still bounds the
  /// attempts in flight. Thread-safety for the host is unchanged: the observer is still only
  /// called on the watch loop's thread.
  std::size_t connector_threads = 0;
  /// true: each target has its own `probe_duration_seconds` and `outage_seconds` histograms
  /// (label `target`). false: all targets of this watchdog record into one of each, labelled
  /// `loop` (the watchdog's name) instead: 32 fewer lines of /metrics per target, for fleets
  /// of thousands of targets. The counters and gauges stay per target either way.
  bool per_target_histograms = true;
};

class PGWD_EXPORT Watchdog {
 public:
  /// On any loop. \param loop must outlive the Watchdog. Throws InvalidOptions.
  explicit Watchdog(Loop& loop, WatchdogOptions options = {});
  /// On a libevent loop: makes its own LibeventLoop adapter over `base` (see
  /// pgwd/adapters/libevent.hpp). \param base the host's loop; must outlive the Watchdog.
  /// Throws InvalidOptions.
  explicit Watchdog(event_base* base, WatchdogOptions options = {});
  /// Closes every connection (no blocking call) and unregisters all events from the host's loop.
  /// Allowed inside the observer's callbacks (see above).
  ~Watchdog();

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  Watchdog(Watchdog&&) = delete;
  Watchdog& operator=(Watchdog&&) = delete;

  /// Opens `options.connections` connections and keeps them healthy. Returns at once; results
  /// arrive as events, never from inside this call. Throws InvalidTarget (nothing is started)
  /// if the options are bad or the name is taken (here, or by another Watchdog on the same
  /// store).
  void add_target(TargetOptions options);

  /// Closes the target's connections and removes its metric series; no event of it follows.
  /// Safe from an observer callback. Returns false if no target has that name.
  bool remove_target(std::string_view name);

  /// Removes each of `names` (unknown ones are skipped); returns how many were removed. Safe
  /// from an observer callback. Linear in the targets removed, and bounded per loop pass:
  ///  - at return, each removed target is gone from target_names() and connection_states(), its
  ///    series from the store (a scrape never sees a series of a target that stays missing), its
  ///    name is free for add_target (here or on another Watchdog of the store), and no event of
  ///    it follows. This part is O(1) a target, 7-17 µs measured (bench/README.md): pass a few
  ///    hundred names a call to keep it short (the daemon's reload passes 250).
  ///  - closing their connections (a PQfinish each, the costly part) goes on over the next loop
  ///    passes, at most ~2.5 ms of the loop's time a pass (one target's closing past it at
  ///    most), oldest first, so that removing 5,000 of 10,000 targets is no single stall. It
  ///    starts in the call if the first part took less than that: the call as a whole is one
  ///    such step. targets_closing() counts the targets whose connections are not all closed
  ///    yet; the Watchdog's destructor closes the rest at once. remove_target() closes at once,
  ///    however long that takes.
  std::size_t remove_targets(std::span<const std::string> names);

  /// Targets removed by remove_targets() whose connections are still being closed (0 once every
  /// one is closed).
  std::size_t targets_closing() const noexcept;

  std::vector<std::string> target_names() const;

  /// The state of each connection of a target, by index; empty if the target is unknown.
  std::vector<ConnectionState> connection_states(std::string_view target) const;

  /// Lends a host-owned idle connection to be watched until the Loan is taken back (see
  /// pgwd/lending.hpp). Unlike the other methods, callable from any thread. Throws LendRefused
  /// (nothing changed on the connection) if it is NULL, not CONNECTION_OK, in a transaction,
  /// busy, in pipeline mode, already lent, or the options are bad.
  Loan lend(PGconn* connection, LendOptions options);

  /// Where its metrics are (WatchdogOptions::metrics, or the store made for it).
  const std::shared_ptr<SeriesStore>& metrics() const noexcept;
  /// The `loop` label of this watchdog's own series (WatchdogOptions::name).
  const std::string& name() const noexcept;

 private:
  // add_target for options prepared already, so that their DSN is not parsed again
  // (watchdog/target_settings.hpp); the daemon's, not part of the library's API.
  friend void add_prepared_target(Watchdog& watchdog, TargetOptions options,
                                  TargetSettings settings);
  // The library's own reach inside (watchdog/watchdog_internals.hpp): the pool opens its
  // connections on the watch loop.
  friend struct WatchdogInternals;

  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgwd
