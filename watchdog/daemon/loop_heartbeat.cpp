#include "daemon/loop_heartbeat.hpp"

#include <new>

namespace pgwd::daemon {

LoopHeartbeat::LoopHeartbeat(event_base* base, HealthState& health)
    : health_(health), timer_(event_new(base, -1, EV_PERSIST, &LoopHeartbeat::tick, this)) {
  const timeval period = to_timeval(kPeriod);
  if (!timer_ || event_add(timer_.get(), &period) != 0) throw std::bad_alloc();
  health_.beat(std::chrono::steady_clock::now());
}

void LoopHeartbeat::tick(evutil_socket_t, short, void* self) {
  auto* heartbeat = static_cast<LoopHeartbeat*>(self);
  heartbeat->health_.beat(std::chrono::steady_clock::now());
}

}  // namespace pgwd::daemon
