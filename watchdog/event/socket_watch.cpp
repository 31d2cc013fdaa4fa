#include "event/socket_watch.hpp"

#include <new>

namespace pgwd {

void SocketWatch::watch(evutil_socket_t fd, short events) {
  event_.reset();  // delete the old registration before the new one (see class comment)
  event_.reset(event_new(base_, fd, events, &SocketWatch::ready, this));
  if (!event_) throw std::bad_alloc();
  event_add(event_.get(), nullptr);
}

void SocketWatch::activate(short events) {
  if (event_) event_active(event_.get(), events, 0);
}

void SocketWatch::ready(evutil_socket_t, short events, void* self) {
  static_cast<SocketWatch*>(self)->on_ready_(events);
}

}  // namespace pgwd
