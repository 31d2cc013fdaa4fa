#pragma once

/// \file
/// What the watchdog needs from an event loop, and nothing more: timers and the clock, interest
/// in a socket's readiness, host name resolution, and a thread-safe `post`. The watchdog's core
/// never includes a loop's header; an adapter maps this onto a real loop:
///
///  - `pgwd/adapters/libevent.hpp`: `LibeventLoop` over a host's `event_base` (in the library;
///    `Watchdog(event_base*, ...)` makes one for you);
///  - `pgwd/adapters/asio.hpp`: `AsioLoop` over a host's `asio::io_context` (header-only: the
///    host compiles it against its own asio);
///  - or your own, for any other loop: implement the four classes below.
///
/// All methods run on the loop's thread, except `Loop::post` and `Loop::in_loop_thread`, which
/// any thread may call.
///
/// Re-entrancy every adapter must allow (the watchdog relies on it): from inside a timer's or a
/// watch's own callback, that timer or watch may be disarmed, re-armed, stopped, re-pointed at
/// another socket, or destroyed; and no callback ever runs inside the call that armed, watched
/// or posted it. The watchdog itself never destroys an object of its own while that object's
/// code is on the stack: it defers such deletions until its outermost callback returns.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pgwd/export.hpp"

namespace pgwd {

using MonotonicTime = std::chrono::steady_clock::time_point;
using Nanos = std::chrono::nanoseconds;

/// A one-shot timer. Destroying it cancels it.
class PGWD_EXPORT Timer {
 public:
  virtual ~Timer() = default;
  /// (Re)starts the countdown; a pending expiry is replaced. The callback never runs before
  /// `delay` has passed on the steady clock (libevent's coarse clock may not be trusted for
  /// that: the adapter re-checks), nor inside arm() itself, even for a zero delay.
  virtual void arm(Nanos delay) = 0;
  virtual void disarm() = 0;
  virtual bool armed() const = 0;
};
using TimerPtr = std::unique_ptr<Timer>;

/// What a socket is watched for.
enum class Interest : std::uint8_t { read = 1, write = 2, read_write = 3 };

/// What the loop reports about a watched socket. An error or hang-up condition is reported as
/// readable (and writable): the reader then finds out what happened.
struct Readiness {
  bool readable = false;
  bool writable = false;
};

/// Interest in one socket at a time. Level-triggered: the callback runs again, once per loop
/// iteration, for as long as the condition holds and the interest stands. libpq reads about one
/// buffer per PQconsumeInput and cannot tell whether more is waiting, so an edge-triggered watch
/// would strand messages. The adapter never closes the socket (libpq owns it). Destroying the
/// watch stops it.
class PGWD_EXPORT SocketWatch {
 public:
  virtual ~SocketWatch() = default;
  /// Starts watching `fd` for `interest`, replacing any previous socket or interest. The
  /// previous registration is removed first: libpq may close a socket and reuse its number, and
  /// a stale registration on a recycled fd must never swallow the new one's events.
  virtual void watch(int fd, Interest interest) = 0;
  /// Stops watching. Safe when not watching, and before or after libpq closed the socket.
  virtual void stop() = 0;
  /// Reports the watched socket readable soon (from the loop, never inside this call), whatever
  /// the kernel says: OpenSSL may hold decrypted bytes that the socket no longer shows.
  virtual void activate_read() = 0;
};
using SocketWatchPtr = std::unique_ptr<SocketWatch>;

/// The result of a host name lookup.
struct Resolution {
  std::vector<std::string> addresses;  ///< numeric, in the resolver's order, no duplicates
  std::string error;                   ///< empty on success
};

/// A lookup in flight. Destroying it cancels it.
class PGWD_EXPORT Lookup {
 public:
  virtual ~Lookup() = default;
  /// After cancel() the callback never runs. Safe at any time, also after completion and from
  /// inside the callback.
  virtual void cancel() noexcept = 0;
};

/// Non-blocking host name lookups (libpq's own lookup blocks the loop). /etc/hosts is honoured.
/// Nothing is cached: every lookup asks again. Must outlive every Lookup it hands out.
class PGWD_EXPORT Resolver {
 public:
  using Done = std::function<void(Resolution)>;
  virtual ~Resolver() = default;
  /// `done` runs once, from the loop, never inside resolve().
  virtual std::unique_ptr<Lookup> resolve(const std::string& host, Done done) = 0;
};

class PGWD_EXPORT Loop {
 public:
  virtual ~Loop() = default;

  /// The steady clock the timers count on (tests inject a fake one).
  virtual MonotonicTime now() const = 0;
  virtual TimerPtr make_timer(std::function<void()> on_expiry) = 0;
  virtual SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) = 0;
  /// `nameservers` ("IP", "IP:PORT", "[IPv6]:PORT") replace the system's resolver configuration
  /// when not empty. Throws std::invalid_argument naming a bad entry, or one the adapter cannot
  /// honour.
  virtual std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) = 0;

  /// Thread-safe. Runs `task` on the loop's thread soon: never inside post() itself, in the
  /// order posted from any one thread, and wakes the loop at once if it is waiting. A task still
  /// queued when the adapter is destroyed is destroyed without running.
  virtual void post(std::function<void()> task) = 0;
  /// Thread-safe. True when called on the thread that runs this loop.
  virtual bool in_loop_thread() const = 0;
};

}  // namespace pgwd
