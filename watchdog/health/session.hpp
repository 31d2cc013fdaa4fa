#pragma once

/// The I/O side of one connected, idle PostgreSQL session, seen from the code that watches it:
/// watched connections and lent ones alike. The real one drives libpq on the Loop interface
/// (pg/pg_session.hpp); unit tests script one to walk the watching state machines through every
/// transition with a fake clock.
///
/// One channel only: the methods the watcher calls never call back into it (what they learn,
/// they return, or report later from the loop), and each loop event ends in at most one callback,
/// as the session's very last action, carrying everything that came with it (the NOTIFY and
/// NOTICE messages read along the way included). So the receiver may close the session, or be
/// stopped by its observer, from inside any callback, and no half-finished step of the session
/// runs afterwards.

#include <optional>
#include <string>
#include <vector>

#include "pgwd/connection_state.hpp"
#include "pgwd/events.hpp"

namespace pgwd {

struct Failure {
  Cause cause = Cause::closed;
  std::string sqlstate;
  std::string message;
};

struct Notification {
  std::string channel;
  std::string payload;
  int sender_pid = 0;
};

struct Notice {
  std::string severity;
  std::string sqlstate;
  std::string message;
};

/// Messages read along with an event, in the order they arrived; delivered by the receiver.
struct Arrivals {
  std::vector<Notification> notifications;
  std::vector<Notice> notices;
  bool empty() const noexcept { return notifications.empty() && notices.empty(); }
};

/// What reading the input after an OS wake-up showed.
struct Inspection {
  enum class Verdict {
    explained,    ///< NOTIFY, NOTICE or ParameterStatus arrived: the connection is fine
    unexplained,  ///< nothing that accounts for the wake-up: probe to find out
    went_away,    ///< the server ended the session, or the socket is dead: `failure` says why
  };
  Verdict verdict = Verdict::unexplained;
  Failure failure;
  Arrivals arrived;
};

struct ProbeDone {
  std::optional<Failure> failure;  ///< empty: the probe succeeded
  Arrivals arrived;                ///< what came before the answer
};

/// Callbacks from a Session, always from a loop callback of the session's own.
class SessionCallbacks {
 public:
  virtual void on_readable() = 0;  ///< the OS reported activity on the idle connection
  virtual void on_probe_done(const ProbeDone& done) = 0;

 protected:
  ~SessionCallbacks() = default;
};

class Session {
 public:
  virtual ~Session() = default;
  /// Reports on_readable whenever the socket is readable (level-triggered) until told otherwise.
  virtual void watch_idle() = 0;
  /// Reads what came and says what it means.
  virtual Inspection inspect() = 0;
  /// Sends the probe query. Ends in on_probe_done, from the loop, never inside probe().
  virtual void probe() = 0;
  /// One round trip that is no statement, to prove the backend answers and to bring back the
  /// role it reports (ParameterStatus rides before ReadyForQuery; PostgreSQL pushes nothing to an
  /// idle session). Ends in on_probe_done like probe(), with server_info() up to date.
  virtual void heartbeat() = 0;
  /// What was read and not handed over yet: while a probe or heartbeat waits for its answer, the
  /// notifications and notices that came before it (on_probe_done hands them over with the
  /// answer). A probe that times out takes them here, so that what the server sent before the
  /// connection is given up is delivered, not lost with it.
  virtual Arrivals take_arrivals() = 0;
  /// While a probe or heartbeat waits for its answer: reads what the socket holds now, without
  /// waiting, and returns the outcome if that was the answer (or the end of the connection), as
  /// on_probe_done would have carried it; then the round trip is over and nothing more is
  /// reported of it. Otherwise nothing, and the round trip goes on. Calls nothing back. A probe's
  /// deadline asks this before it gives up: its timer may run before the callback of a socket
  /// that already holds the answer (see WatchedConnection::probe_timed_out()).
  virtual std::optional<ProbeDone> read_answer() = 0;
  /// Unregisters the socket from the loop, then closes the connection (a borrowed one is let go
  /// of, not closed). Nothing is reported after it, and what take_arrivals() would have given is
  /// dropped. Idempotent.
  virtual void close() = 0;
  /// What the server reports now (ParameterStatus as of the last message read).
  virtual ServerInfo server_info() const = 0;
};

}  // namespace pgwd
