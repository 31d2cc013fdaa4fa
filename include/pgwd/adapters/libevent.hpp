#pragma once

/// \file
/// The Loop adapter for libevent 2.1: the watchdog on an `event_base` the host owns and runs.
/// `Watchdog(event_base*, options)` makes one of these itself; make your own to share one
/// adapter between several watchdogs, or to hand it to a WatchdogThread-like owner of yours.

#include <memory>

#include "pgwd/export.hpp"
#include "pgwd/loop.hpp"

struct event_base;

namespace pgwd {

/// Timers (re-checked against the steady clock, so never early), level-triggered socket
/// watches (EV_READ/EV_WRITE with EV_PERSIST), evdns for name resolution, and a thread-safe
/// post() through an eventfd of its own: it does not need the host to have enabled libevent's
/// locking (evthread_use_pthreads), and it never calls that process-wide switch behind the
/// host's back.
///
/// Construct it on the thread that runs the base (that thread is what in_loop_thread() reports)
/// and destroy it there, after everything made from it. It keeps one persistent, inactive event
/// on the base for post(), so `event_base_dispatch` does not return for lack of events while the
/// adapter exists: end your loop with `event_base_loopbreak`, as a long-running service does
/// anyway. While nothing is posted and no timer of the watchdog is due, it causes no wake-up.
/// Not copyable or movable (registered with the loop).
class PGWD_EXPORT LibeventLoop final : public Loop {
 public:
  /// \param base the host's loop; must outlive the adapter. Throws std::invalid_argument if
  /// null, std::system_error if the wake-up eventfd cannot be made.
  explicit LibeventLoop(event_base* base);
  ~LibeventLoop() override;
  LibeventLoop(const LibeventLoop&) = delete;
  LibeventLoop& operator=(const LibeventLoop&) = delete;
  LibeventLoop(LibeventLoop&&) = delete;
  LibeventLoop& operator=(LibeventLoop&&) = delete;

  MonotonicTime now() const override;
  TimerPtr make_timer(std::function<void()> on_expiry) override;
  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) override;
  std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) override;
  void post(std::function<void()> task) override;
  bool in_loop_thread() const override;

  event_base* base() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgwd
