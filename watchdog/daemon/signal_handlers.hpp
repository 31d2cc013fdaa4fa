#pragma once

#include <functional>

#include "event/libevent/event_ptr.hpp"

namespace pgwd::daemon {

/// SIGTERM/SIGINT and SIGHUP delivered through the loop (evsignal), so that stopping and
/// reloading run as ordinary loop callbacks, never inside an async signal handler.
class SignalHandlers {
 public:
  SignalHandlers(event_base* base, std::function<void()> on_stop, std::function<void()> on_reload);
  SignalHandlers(const SignalHandlers&) = delete;
  SignalHandlers& operator=(const SignalHandlers&) = delete;

 private:
  static void stop(evutil_socket_t, short, void* self);
  static void reload(evutil_socket_t, short, void* self);

  std::function<void()> on_stop_;
  std::function<void()> on_reload_;
  EventPtr sigterm_;
  EventPtr sigint_;
  EventPtr sighup_;
};

}  // namespace pgwd::daemon
