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
/// time. An attempt still on its way at the next turn (the scout's, or one whose own backoff
/// ran out) gets a hedge instead: a fresh attempt beside it, renewed every `period` while both
/// are on their way (WatchedConnection::hedge), so an attempt that a proxy or a lost SYN holds
/// never keeps the target away longer than a period after its server answers again. One hedge
/// per target per turn. When any connection becomes healthy, every sibling still waiting
/// retries within a random delay of at most `spread` (each still queued for a connect slot, so
/// max_concurrent_connects holds). A connection whose last failure will not fix itself (a wrong
/// password, a missing database: `lasting(i)`) is never scouted, hedged or hurried: it keeps
/// backing off.
///
/// The hooks read the target's connections; `retry_within(i, d)` is
/// WatchedConnection::retry_within and `hedge(i)` WatchedConnection::hedge, which only arm a
/// timer or open a link and report nothing, so lost() and back() may be called from inside any
/// connection's events. Not copyable or movable: its timer holds a pointer to it.
class RecoveryScout {
 public:
  struct Hooks {
    std::function<ConnectionState(std::size_t)> state;
    std::function<bool(std::size_t)> lasting;  ///< its last failure will not fix itself
    std::function<void(std::size_t, Nanos)> retry_within;
    /// WatchedConnection::hedge(older_than) (which starts none when no connect slot is free at
    /// once). The scout passes half its period: an attempt younger than that is left alone.
    std::function<void(std::size_t, Nanos)> hedge;
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
  bool on_its_way(std::size_t index) const;
  /// Hedges the first attempt on its way, from `first` on in rotation; whether there was one.
  bool hedge_one(std::size_t first);

  Random& random_;
  Nanos period_;
  Nanos spread_;
  std::size_t connections_;
  Hooks hooks_;
  std::size_t next_ = 0;              ///< first candidate of the next turn
  std::optional<std::size_t> scout_;  ///< sent or hedged at the last turn
  TimerPtr timer_;
};

}  // namespace pgwd
