#pragma once

#include <functional>

#include "event/event_ptr.hpp"

namespace pgwd {

/// Watches one socket for readiness on the loop.
///
/// Re-pointing the watch or stopping it always deletes the previous registration first: libpq
/// may close a socket and reuse its fd number (PQconnectPoll, a failing PQconsumeInput), and a
/// stale libevent event on a recycled fd keeps a new one on that fd from ever firing.
/// Not copyable or movable: the loop holds a pointer to it.
class SocketWatch {
 public:
  using Callback = std::function<void(short events)>;

  SocketWatch(event_base* base, Callback on_ready) : base_(base), on_ready_(std::move(on_ready)) {}
  SocketWatch(const SocketWatch&) = delete;
  SocketWatch& operator=(const SocketWatch&) = delete;

  /// `events`: EV_READ and/or EV_WRITE, with EV_PERSIST for level-triggered watching.
  void watch(evutil_socket_t fd, short events);
  void stop() noexcept { event_.reset(); }
  /// Runs the callback from the loop soon with `events`, as if the socket were ready. Used when
  /// OpenSSL holds decrypted bytes the kernel no longer reports.
  void activate(short events);

 private:
  static void ready(evutil_socket_t, short events, void* self);

  event_base* base_;
  Callback on_ready_;
  EventPtr event_;
};

}  // namespace pgwd
