#include "daemon/signal_handlers.hpp"

#include <csignal>
#include <new>

namespace pgwd::daemon {
namespace {

EventPtr watch_signal(event_base* base, int signal, event_callback_fn callback, void* self) {
  EventPtr event(evsignal_new(base, signal, callback, self));
  if (!event || evsignal_add(event.get(), nullptr) != 0) throw std::bad_alloc();
  return event;
}

}  // namespace

SignalHandlers::SignalHandlers(event_base* base, std::function<void()> on_stop,
                               std::function<void()> on_reload)
    : on_stop_(std::move(on_stop)),
      on_reload_(std::move(on_reload)),
      sigterm_(watch_signal(base, SIGTERM, &SignalHandlers::stop, this)),
      sigint_(watch_signal(base, SIGINT, &SignalHandlers::stop, this)),
      sighup_(watch_signal(base, SIGHUP, &SignalHandlers::reload, this)) {}

void SignalHandlers::stop(evutil_socket_t, short, void* self) {
  static_cast<SignalHandlers*>(self)->on_stop_();
}
void SignalHandlers::reload(evutil_socket_t, short, void* self) {
  static_cast<SignalHandlers*>(self)->on_reload_();
}

}  // namespace pgwd::daemon
