#pragma once

/// \file
/// A Watchdog on a thread of its own, for hosts without an event loop (plain threads, a thread
/// pool) or that would rather not share theirs. The thread owns a libevent loop and runs the
/// Watchdog there; every method may be called from any thread.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pgwd/watchdog.hpp"

namespace pgwd {

/// Threading contract:
///  - Every method is thread-safe. A call from another thread is handed to the watchdog's
///    thread and waits for it to be done there; it wakes the loop at once (an eventfd), so it
///    adds no detection latency. Exceptions (InvalidTarget) reach the caller.
///  - The observer's callbacks run on the watchdog's thread. Inside them, every method of this
///    class may be called: it then runs inline, without waiting, so it cannot deadlock, and the
///    Watchdog's callback contract applies (pgwd/watchdog.hpp). Never hold a lock in a callback
///    that another thread holds while calling this class: that thread waits for the watchdog's
///    thread, which would wait for it.
///  - The constructor returns once the loop runs (or throws InvalidOptions, with no thread left).
///    With WatchdogOptions::connector_threads > 0 the Watchdog starts that many connector threads
///    of its own besides (connect attempts run there); the destructor joins them too.
///  - The thread is named `pgwd-watch` (the connector threads `pgwd-connector`), so `top -H`,
///    `perf` and `/proc/PID/task/*/comm` tell it from the host's threads.
///  - Destroy it from any thread but its own (not inside a callback: a thread cannot join
///    itself; that is detected and ends the process with a message). The destructor stops the
///    loop, closes every connection on the watchdog's thread, joins it and frees the loop. No
///    other call may run concurrently with the destructor.
class PGWD_EXPORT WatchdogThread {
 public:
  /// `options.metrics` is made here if null, so metrics() is valid at once.
  explicit WatchdogThread(WatchdogOptions options = {});
  ~WatchdogThread();
  WatchdogThread(const WatchdogThread&) = delete;
  WatchdogThread& operator=(const WatchdogThread&) = delete;
  WatchdogThread(WatchdogThread&&) = delete;
  WatchdogThread& operator=(WatchdogThread&&) = delete;

  /// As Watchdog::add_target; throws InvalidTarget in the calling thread.
  void add_target(TargetOptions options);
  /// As Watchdog::remove_target: when it returns, the target's connections are closed.
  bool remove_target(std::string_view name);
  std::vector<std::string> target_names() const;
  std::vector<ConnectionState> connection_states(std::string_view target) const;
  /// The state of every connection of every target, taken at one moment on the watchdog's thread.
  std::map<std::string, std::vector<ConnectionState>> snapshot() const;
  /// As Watchdog::lend: from any thread, without waiting for the watchdog's thread.
  Loan lend(PGconn* connection, LendOptions options);
  /// Where its metrics are: thread-safe, scrape it from any thread.
  const std::shared_ptr<SeriesStore>& metrics() const noexcept;
  /// True on the watchdog's own thread (inside the observer's callbacks).
  bool in_watchdog_thread() const;

 private:
  friend struct WatchdogInternals;  // watchdog/watchdog_internals.hpp
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgwd
