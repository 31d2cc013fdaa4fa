#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "pgwd/loop.hpp"

namespace pgwd {

/// Bounds how many connect attempts run at once across a Watchdog. libpq does CPU work inside
/// PQconnectPoll on the loop (a SCRAM exchange costs milliseconds), and libevent runs every
/// ready connection in one pass: a thousand connections returning together would stall the
/// loop for a second. With a bound, one pass does at most `limit` attempts' worth of work.
/// Waiting attempts are admitted in arrival order, always from a loop callback of the gate's
/// own, never from inside enter() or leave(), so nothing re-enters its caller.
class AttemptGate {
 public:
  using Ticket = std::uint64_t;

  AttemptGate(Loop& loop, std::size_t limit);
  AttemptGate(const AttemptGate&) = delete;
  AttemptGate& operator=(const AttemptGate&) = delete;

  /// Queues `admit`, which runs once a slot is free. Call leave(ticket) when the attempt ends
  /// (or to give up waiting). Both are O(log n) in the attempts running and waiting: stopping
  /// 40,000 waiting connections must not scan the queue once each.
  Ticket enter(std::function<void()> admit);
  /// A slot now, if one is free and no attempt waits for one (it never jumps the queue); else
  /// nothing. For an extra attempt that is only worth making at once (WatchedConnection::hedge).
  std::optional<Ticket> try_enter();
  void leave(Ticket ticket);

  std::size_t running() const noexcept { return running_.size(); }
  std::size_t waiting() const noexcept { return waiting_.size(); }

 private:
  void admit_waiting();

  std::size_t limit_;
  Ticket next_ = 0;
  std::set<Ticket> running_;
  // Tickets grow with each enter(), so key order is arrival order.
  std::map<Ticket, std::function<void()>> waiting_;
  TimerPtr admit_timer_;
};

}  // namespace pgwd
