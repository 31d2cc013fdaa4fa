#pragma once

/// \file
/// Lending: a host that owns an idle connection (a pool's idle `PGconn*`) lends it to the
/// watchdog while it sits idle, and takes it back at checkout with a verdict and no round trip.
///
/// While lent, the watchdog watches the connection exactly as it watches its own: it sends
/// nothing while the OS reports nothing; when the socket wakes up it reads what came (FATAL,
/// EOF, NOTIFY, ParameterStatus) and probes only when that does not settle it. It never closes
/// the connection: the owner does (PQfinish), dead or alive.
///
/// Threading: Watchdog::lend() and every method of Loan may be called from any thread, and
/// neither waits for the watchdog's loop (take-back is one mutex and one non-blocking read on
/// the caller's thread; only a take_back() that finds a probe in flight waits for its answer,
/// bounded by probe_timeout). The callbacks (on_death, on_server_lost) run on the watchdog's
/// loop thread, right after the evidence was read, holding no lock of the watchdog's: inside
/// them any Loan (the one the event is about, or any other) may be taken back (it then runs
/// inline) or destroyed, connections may be lent, and the Watchdog's callback contract applies
/// (watchdog.hpp). They must not block.
///
/// What the watchdog changes on a lent connection, and restores at take-back: the notice
/// receiver (the owner's keeps receiving while lent: every notice is passed on to it, on the
/// watchdog's thread), the non-blocking flag. NOTIFY messages read while lent are returned with
/// the verdict, in order (libpq's queue is drained to read them), and counted.

#include <libpq-fe.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pgwd/connection_state.hpp"
#include "pgwd/export.hpp"

namespace pgwd {

/// lend() refused the connection: NULL, not CONNECTION_OK, in a transaction, busy, in pipeline
/// mode, already lent, or bad LendOptions. Nothing was changed on the connection.
class PGWD_EXPORT LendRefused : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// How a lent connection died.
struct LoanDeath {
  Cause cause = Cause::closed;  ///< server_shutdown, idle_session_timeout, closed, timed_out, ...
  std::string sqlstate;         ///< e.g. 57P01; empty when the server said nothing (EOF, reset)
  std::string message;          ///< the server's or libpq's words, never a password
  std::chrono::system_clock::time_point detected_at;
};

/// A NOTIFY that arrived while the connection was lent.
struct LentNotification {
  std::string channel;
  std::string payload;
  int sender_pid = 0;
};

/// What take-back says about the connection.
enum class LoanVerdict {
  alive,             ///< usable: nothing the watchdog read says otherwise
  dead,              ///< see `death`; the owner should PQfinish it
  busy,              ///< try_take_back(): a probe is in flight; still lent, ask again later
  watchdog_stopped,  ///< the Watchdog was destroyed while lent; the connection is intact but
                     ///< was not watched since: treat it as unknown (e.g. ping it)
};

PGWD_EXPORT std::string_view to_string(LoanVerdict verdict) noexcept;

struct TakenBack {
  LoanVerdict verdict = LoanVerdict::alive;
  std::optional<LoanDeath> death;                ///< set when dead
  bool activity = false;                         ///< the socket woke up while lent
  std::vector<LentNotification> notifications;   ///< NOTIFYs read while lent, in order
  int probes = 0;                                ///< round trips while lent: probes, heartbeats
  std::chrono::nanoseconds lent_for{0};
};

/// The server behind a target went away as a whole: drop every idle connection of it. The
/// evidence: a 57P02 (a server process crashed: every session ends), or every lent connection of
/// the target dying within 1 s, two or more of them (a fast or immediate shutdown). Told once per
/// target, until a connection of it is lent again. A single pg_terminate_backend or
/// idle_session_timeout is a single death and signals nothing.
struct ServerLost {
  std::string target;
  std::string reason;  ///< e.g. "57P02 on a lent connection", "all 20 lent connections died"
  LoanDeath evidence;  ///< the death that completed the evidence
  /// When the evidence was complete (steady_clock, taken under the same lock as each lend()'s
  /// own). This is told later, from the loop: a connection lent in between, e.g. one a pool just
  /// opened to replace the dead, is from the server's new life and not part of the loss. Compare
  /// with steady_clock::now() read after your lend() returned.
  std::chrono::steady_clock::time_point evidence_at;
};

struct LendOptions {
  /// Groups loans: metrics label, and the unit of ServerLost. Required.
  std::string target;
  /// Sent only when the socket woke up and what came does not settle it.
  std::string probe_query = "SELECT 1";
  std::chrono::milliseconds probe_timeout{5000};
  /// After this much silence, one round trip bounded by probe_timeout (zero, the default:
  /// never). It is no statement: a lone Sync (libpq pipeline mode, entered and left within the
  /// round trip; PostgreSQL 14+), which the server neither logs nor counts, so a lent
  /// connection's heartbeat adds nothing to `log_statement = all` or pg_stat_statements. Before
  /// PostgreSQL 14 it is `SELECT pg_is_in_recovery()`. A take-back while it is in flight is
  /// `busy`, as for a probe.
  std::chrono::milliseconds heartbeat{0};
  /// Empty (default): the heartbeat is the lone Sync above. Otherwise the heartbeat sends this
  /// statement instead (a check that must touch a table, say), logged and counted like any.
  std::string heartbeat_query;
  /// Called once, on the watchdog's thread, when the connection is found dead while lent.
  std::function<void(const LoanDeath&)> on_death;
  /// Called on the watchdog's thread when the target's server as a whole went away. The
  /// callback given with the latest lend() of a target is the one told.
  std::function<void(const ServerLost&)> on_server_lost;
  /// libpq does not reveal a notice receiver's argument: if the connection has a notice
  /// receiver of its own (not libpq's default), give its argument here so that notices keep
  /// reaching it while lent. lend() refuses a connection with a receiver of its own otherwise.
  std::optional<void*> notice_receiver_arg;
};

class LendingLedger;  // internal
struct LoanState;   // internal

/// A lent connection. Move-only. Destroying it takes the connection back and drops the verdict
/// (a probe in flight is waited for). The Loan may outlive the Watchdog (the verdict then says
/// watchdog_stopped).
class PGWD_EXPORT Loan {
 public:
  Loan() = default;
  ~Loan();
  Loan(Loan&&) noexcept;
  Loan& operator=(Loan&&) noexcept;
  Loan(const Loan&) = delete;
  Loan& operator=(const Loan&) = delete;

  /// Ends the loan. If a probe is in flight it waits for its answer (at most probe_timeout and
  /// a little more), so the verdict is never busy. Before it returns, it reads once more what
  /// arrived (non-blocking, by libpq, so TLS-safe), and restores what lend() changed.
  TakenBack take_back();
  /// As take_back(), but returns at once with `busy` (the loan goes on) if a probe is in flight.
  TakenBack try_take_back();

  /// The connection lent; null once taken back. Do not use it while lent.
  PGconn* connection() const noexcept;
  /// True from lend() to take-back.
  bool lent() const noexcept;
  /// The verdict as of now, without ending the loan (alive, dead, busy or watchdog_stopped).
  LoanVerdict peek() const;

 private:
  friend class LendingLedger;
  explicit Loan(std::shared_ptr<LoanState> state) noexcept;
  std::shared_ptr<LoanState> state_;
};

}  // namespace pgwd
