#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "pgwd/loop.hpp"

namespace pgwd {

/// Bounds how many connect attempts run at once across a Watchdog. libpq does CPU work inside
/// PQconnectPoll on the loop (a SCRAM exchange costs milliseconds), and libevent runs every
/// ready connection in one pass: a thousand connections returning together would stall the
/// loop for a second. With a bound, one pass does at most `limit` attempts' worth of work.
///
/// Waiting attempts belong to a group (a target's name) and the groups take turns: each free
/// slot goes to the next group with a waiting attempt (in name order, wrapping round), and
/// within a group to its oldest attempt. So a target of a few connections coming back is never
/// queued behind another target's reconnect storm of hundreds (a restarted server's), which
/// would hold it for the whole storm. Waiting attempts are admitted always from a loop callback
/// of the gate's own, never from inside enter() or leave(), so nothing re-enters its caller.
class AttemptGate {
 public:
  using Ticket = std::uint64_t;

  AttemptGate(Loop& loop, std::size_t limit);
  AttemptGate(const AttemptGate&) = delete;
  AttemptGate& operator=(const AttemptGate&) = delete;

  /// Queues `admit` in `group`'s line; it runs once a slot is free and the group's turn has
  /// come. Call leave(ticket) when the attempt ends (or to give up waiting). Both are O(log n)
  /// in the attempts and groups running and waiting: stopping 40,000 waiting connections must
  /// not scan the queue once each.
  Ticket enter(std::string_view group, std::function<void()> admit);
  /// A slot now, if one is free and no attempt waits for one (it never jumps the queue); else
  /// nothing. For an extra attempt that is only worth making at once (WatchedConnection::hedge).
  std::optional<Ticket> try_enter();
  void leave(Ticket ticket);

  std::size_t running() const noexcept { return running_.size(); }
  std::size_t waiting() const noexcept { return waiting_.size(); }

 private:
  void admit_waiting();

  // Tickets grow with each enter(), so a line's key order is its arrival order.
  using Line = std::map<Ticket, std::function<void()>>;

  std::size_t limit_;
  Ticket next_ = 0;
  std::set<Ticket> running_;
  std::map<std::string, Line, std::less<>> lines_;  ///< only groups with a waiting attempt
  std::map<Ticket, std::string> waiting_;           ///< each waiting ticket's group
  std::string last_turn_;                           ///< the group a slot went to last
  TimerPtr admit_timer_;
};

}  // namespace pgwd
