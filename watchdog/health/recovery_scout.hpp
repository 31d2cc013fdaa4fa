#pragma once

#include <cstddef>
#include <functional>
#include <optional>

#include "health/random.hpp"
#include "pgwd/connection_state.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// Brings a target's connections back as soon as its server answers again, instead of each one
/// sleeping out its own backoff (up to backoff_max) past that moment.
///
/// While any connection of the target waits in `backoff` after a failure that may fix itself,
/// the scout sends one of them (in rotation) to try at once every `period`, one attempt at a
/// time. When any connection becomes healthy, every sibling still waiting retries within a
/// random delay of at most `spread` (each still queued for a connect slot, so
/// max_concurrent_connects holds). A connection whose last failure will not fix itself (a wrong
/// password, a missing database: `lasting(i)`) is never scouted or hurried: it keeps backing off.
///
/// The hooks read the target's connections; `retry_within(i, d)` is
/// WatchedConnection::retry_within, which only arms a timer, so lost() and back() may be called
/// from inside any connection's events. Not copyable or movable: its timer holds a pointer to it.
class RecoveryScout {
 public:
  struct Hooks {
    std::function<ConnectionState(std::size_t)> state;
    std::function<bool(std::size_t)> lasting;  ///< its last failure will not fix itself
    std::function<void(std::size_t, Nanos)> retry_within;
  };

  /// `period` zero: no scout (lost() and back() do nothing).
  RecoveryScout(Loop& loop, Random& random, Nanos period, Nanos spread, std::size_t connections,
                Hooks hooks);
  RecoveryScout(const RecoveryScout&) = delete;
  RecoveryScout& operator=(const RecoveryScout&) = delete;

  /// A connection went down or an attempt failed: scouting starts, if it is not running.
  void lost();
  /// A connection is healthy: the siblings waiting out a backoff come back now.
  void back();
  void stop();

 private:
  void turn();
  bool waiting_may_fix(std::size_t index) const;

  Random& random_;
  Nanos period_;
  Nanos spread_;
  std::size_t connections_;
  Hooks hooks_;
  std::size_t next_ = 0;              ///< first candidate of the next turn
  std::optional<std::size_t> scout_;  ///< sent at the last turn
  TimerPtr timer_;
};

}  // namespace pgwd
