#pragma once

#include <event2/event.h>

#include "daemon/health_state.hpp"
#include "event/libevent/event_ptr.hpp"

namespace pgwd::daemon {

/// A 100 ms persistent timer on the daemon's loop that stamps HealthState: as long as the loop
/// runs its callbacks, the stamp is fresh; when something blocks the loop, it ages and
/// `/-/healthy` turns 503.
class LoopHeartbeat {
 public:
  static constexpr std::chrono::milliseconds kPeriod{100};

  LoopHeartbeat(event_base* base, HealthState& health);
  LoopHeartbeat(const LoopHeartbeat&) = delete;
  LoopHeartbeat& operator=(const LoopHeartbeat&) = delete;

 private:
  static void tick(evutil_socket_t, short, void* self);

  HealthState& health_;
  EventPtr timer_;
};

}  // namespace pgwd::daemon
