#pragma once

#include <cstddef>
#include <functional>

#include "health/random.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// A target's heartbeat: one round trip per target per period, not one per connection. Each turn
/// asks the next connection in rotation that can take it (an idle, healthy one) and none other, so
/// N connections cost the server one round trip (no statement) per period, and each connection's
/// turn comes every N periods (its own socket is guarded meanwhile by keepalive and
/// TCP_USER_TIMEOUT).
///
/// Spread: the first turn falls at a uniformly random point of the first period, and each next
/// one between 6/8 and 7/8 of a period after the last, so targets added together (a config of
/// 10,000) do not beat together, and never more than 7/8 of a period passes between two turns:
/// the answer to a turn is in before a period of silence has passed, so a role is never stale
/// for longer than the period and a server that stops answering is seen within period +
/// probe_timeout, with an eighth of a period to spare for the round trip and the loop.
///
/// `beat(i)` asks connection i for its round trip and says whether it took it; it may stop the
/// rota (stop() from inside it: the turn after is cancelled), and must not destroy it. Not
/// copyable or movable: its timer holds a pointer to it.
class HeartbeatRota {
 public:
  using Beat = std::function<bool(std::size_t index)>;

  /// `period` zero: no heartbeat at all (start() arms nothing).
  HeartbeatRota(Loop& loop, Random& random, Nanos period, std::size_t connections, Beat beat);
  HeartbeatRota(const HeartbeatRota&) = delete;
  HeartbeatRota& operator=(const HeartbeatRota&) = delete;

  void start();
  void stop();
  /// One round trip now, by the next connection that can take it, outside the rhythm (which it
  /// leaves as it is); also with period zero. Same contract as a turn.
  void beat_now();

 private:
  void turn();
  Nanos draw(Nanos low, Nanos high);

  Random& random_;
  Nanos period_;
  std::size_t connections_;
  Beat beat_;
  std::size_t next_ = 0;  ///< the connection asked first at the next turn
  TimerPtr timer_;
};

}  // namespace pgwd
