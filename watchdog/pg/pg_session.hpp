#pragma once

/// \file
/// One connected PostgreSQL session over libpq on the Loop interface: what is done with a
/// connection once it exists (watch it idle, read what came, probe it with a round trip, close
/// it). Connecting is not here: pg/host_walk.hpp walks the hosts and makes an owned session;
/// lending (lending/lent_connection.hpp) makes a borrowed one over a connection its host lent.

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "event/activity_notes.hpp"
#include "health/session.hpp"
#include "pg/handles.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// How a session asks and reads: shared by the sessions of one target or loan.
struct SessionSettings {
  std::string probe_query;
  std::string heartbeat_query;  ///< empty: a lone Sync (see PgSession::heartbeat())
  /// Behind PgBouncer (TargetOptions::pooler): the role from SQL only, never from
  /// ParameterStatus, and set_up() asks it.
  bool pooled = false;
  std::string dsn_for_redaction;  ///< the user's text, to strip its password from messages
};

/// A Session over one connected PGconn in non-blocking mode. Nothing here blocks: PQsendQuery,
/// PQflush and PQconsumeInput on the loop's socket watch. It never calls back from inside a
/// method its owner called (see health/session.hpp): a round trip that cannot even be sent
/// reports from the loop. Each callback is the session's last action in its loop callback.
///
/// The connection is either
///  - owned (Owned: the host walk's, or the pool's until release()): close() PQfinishes it;
///  - borrowed (Borrowed: a connection the host lent, pgwd/lending.hpp): never finished here;
///    its notice receiver becomes the session's, which passes every notice on to the owner's
///    (the lender restores the owner's receiver at take-back).
///
/// The callbacks receiver may change (set_callbacks()): the host walk receives the end of
/// set_up(), then hands the session to its owner, who points it at itself. Not copyable or
/// movable (registered with the loop).
class PgSession final : public Session {
 public:
  /// A connection the Connector delivered (CONNECTION_OK, libpq's own notice receiver), put in
  /// non-blocking mode by whoever hands it over. `startup_notices` (what the server said while
  /// connecting, as the Connector read it, unredacted) are read as if they came on the session:
  /// redacted, kept for take_arrivals(), and a "session ending" one (57P0x) remembered.
  struct Owned {
    PgConnPtr conn;
    std::vector<Notice> startup_notices;
  };
  /// A connection the host owns and lent us, connected and in non-blocking mode (the lender
  /// makes it so). `forward` (the owner's notice receiver) hears every notice after the session.
  struct Borrowed {
    PGconn* conn = nullptr;
    PQnoticeReceiver forward = nullptr;
    void* forward_arg = nullptr;
  };

  /// `settings`, `notes` and `who` (names the connection in slow-callback reports) must outlive
  /// the session; `host` ("host:port") is what server_info() names. Starts idle, not watched.
  PgSession(Owned owned, const SessionSettings& settings, std::string host, Loop& loop,
            ActivityNotes& notes, const ConnectionRef& who, SessionCallbacks& callbacks);
  PgSession(Borrowed borrowed, const SessionSettings& settings, std::string host, Loop& loop,
            ActivityNotes& notes, const ConnectionRef& who, SessionCallbacks& callbacks);
  ~PgSession() override;
  PgSession(const PgSession&) = delete;
  PgSession(PgSession&&) = delete;
  PgSession& operator=(PgSession&&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  /// Who hears from now on. Not from inside a round trip in flight (its end would go there).
  void set_callbacks(SessionCallbacks& callbacks) noexcept { callbacks_ = &callbacks; }

  /// The round trip that makes a new connection usable, for the host walk: `setup_sql` (LISTEN
  /// ...; may be empty only when pooled), and on a pooled session the role query in the same
  /// round trip (kPooledServerQuery: PgBouncer answered the login from its cache; the first
  /// query links the client to a server and proves that one answers). Ends in on_probe_done
  /// like probe(), from the loop, with server_info() up to date; the session is idle after it.
  void set_up(const std::string& setup_sql);

  void watch_idle() override;
  Inspection inspect() override;
  void probe() override;
  /// A lone Sync message (pipeline mode, nothing queued), answered by ReadyForQuery: the server
  /// parses and runs nothing, logs nothing and counts no statement, and the ParameterStatus
  /// messages that precede its ReadyForQuery bring the role back. Before PostgreSQL 14 the server
  /// reports no role, so there it asks `SELECT pg_is_in_recovery()`, a statement, and
  /// server_info() answers in_hot_standby from it. A heartbeat_query, if set, is sent instead.
  /// A pooled session always asks the role in SQL (kPooledServerQuery): see set_up().
  void heartbeat() override;
  void close() override;
  Arrivals take_arrivals() override;
  /// PQconsumeInput on the non-blocking socket, then what the socket callback does with it.
  std::optional<ProbeDone> read_answer() override;
  ServerInfo server_info() const override;

  /// Hands an owned connection over, idle with nothing in flight, for an owner of its own (the
  /// pool): the session stops watching it and is closed afterwards, reporting nothing more. The
  /// PGconn is back in blocking mode with libpq's own notice receiver. Null when the session is
  /// borrowed, closed or not idle.
  PgConnPtr release();

 private:
  enum class Phase {
    closed,      ///< no PGconn
    setting_up,  ///< set_up()'s round trip in flight
    idle,        ///< connected; watched for readability (or not watched at all)
    probing,     ///< probe or heartbeat in flight
  };

  PgSession(PgConnPtr conn, bool owned, const SessionSettings& settings, std::string host,
            Loop& loop, ActivityNotes& notes, const ConnectionRef& who,
            SessionCallbacks& callbacks);
  void on_socket(Readiness ready);
  void remember_parameters();
  /// probe() and heartbeat(): false (the failure reported from the loop) when not connected.
  bool begin_round_trip();
  void send_query(const char* sql);  ///< null: a lone Sync (see heartbeat())
  void drive_query(Readiness ready);
  void report_later(std::function<void()> report);
  void query_done(std::optional<Failure> failure);
  Failure connection_lost(int socket_error) const;
  std::size_t drain_notifications();
  bool parameters_changed();
  bool openssl_holds_bytes() const;
  std::string clean(std::string_view message) const;
  void take_notice(const std::string& severity, const std::string& sqlstate,
                   const std::string& message);
  static void receive_notice(void* self, const PGresult* result);

  const SessionSettings& settings_;
  const std::string host_;
  ActivityNotes& notes_;
  const ConnectionRef& who_;
  SessionCallbacks* callbacks_;
  SocketWatchPtr watch_;
  TimerPtr report_timer_;         ///< runs report_ from the loop
  std::function<void()> report_;  ///< what probe() could not say inline
  Phase phase_ = Phase::idle;
  PgConnPtr conn_;
  const bool owned_;
  std::optional<Failure> ending_;  ///< the server said it is ending the session (57P0x, FATAL)
  std::optional<Failure> query_error_;
  bool asking_recovery_ = false;           ///< the query in flight asks the role (pre-14 or pooled)
  std::optional<bool> recovery_from_sql_;  ///< its last answer (before PostgreSQL 14, or pooled)
  std::optional<bool> read_only_from_sql_;  ///< default_transaction_read_only, pooled only
  std::string started_from_sql_;            ///< pooled only: ServerInfo::server_started
  std::string address_from_sql_;            ///< pooled only: ServerInfo::server_address
  Arrivals arrived_;                        ///< read and not handed over yet
  std::vector<std::pair<const char*, std::string>> parameters_;  ///< last ParameterStatus seen
  PQnoticeReceiver forward_notice_ = nullptr;  ///< a borrowed connection's owner's receiver
  void* forward_notice_arg_ = nullptr;
  PQnoticeReceiver libpq_receiver_ = nullptr;  ///< the one an owned connection came with
  /// Set during read_answer(): query_done() leaves a probe's outcome here instead of reporting it.
  std::optional<ProbeDone>* answer_out_ = nullptr;
};

}  // namespace pgwd
