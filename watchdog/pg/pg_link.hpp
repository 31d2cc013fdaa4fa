#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event/activity_notes.hpp"
#include "health/link.hpp"
#include "health/role_requirement.hpp"
#include "pg/connector.hpp"
#include "pg/conninfo.hpp"
#include "pg/handles.hpp"
#include "pg/host_list.hpp"

namespace pgwd {

/// How a PgLink connects: prepared once per target (prepare_target, target_settings.hpp).
struct LinkSettings {
  /// The user's conninfo plus keepalive/application_name defaults, without the host list and
  /// target_session_attrs, which the link applies itself host by host.
  Conninfo conninfo;
  std::vector<HostEntry> hosts;  ///< at least one
  RoleRequirement role = RoleRequirement::any;
  Nanos host_timeout{};  ///< deadline of one host of an attempt
  std::string probe_query;
  std::string heartbeat_query;  ///< empty: a lone Sync (see heartbeat())
  /// Behind PgBouncer (TargetOptions::pooler): one round trip before on_connected, and the role
  /// from SQL only, never from ParameterStatus.
  bool pooled = false;
  std::string setup_sql;          ///< run after each connect (LISTEN ...); empty for none
  std::string dsn_for_redaction;  ///< the user's text, to strip its password from messages
};

/// A Link over libpq on the Loop interface. Nothing here blocks: each host's PGconn is connected
/// by the Connector (PQconnectStartParams/PQconnectPoll, on the watch loop or on a connector
/// thread: pg/connector.hpp), then PQsendQuery/PQflush/PQconsumeInput here, host names resolved
/// by the loop's Resolver and passed as hostaddr. A connect attempt walks the host list itself,
/// one PGconn per host under its own deadline (on the watch loop: it cancels the host's
/// attempt), and checks the role (target_session_attrs) and runs setup_sql itself. It never calls
/// back from inside a method the state machine called (see health/link.hpp): connect() starts from
/// the loop, and a probe that cannot even be sent reports from the loop. Not copyable or movable
/// (registered with the loop).
class PgLink final : public Link {
 public:
  /// `who` names the connection in slow-callback reports; it and `connector` must outlive the
  /// link.
  PgLink(const LinkSettings& settings, Loop& loop, Resolver& resolver, Connector& connector,
         ActivityNotes& notes, const ConnectionRef& who, LinkCallbacks& callbacks);

  ~PgLink() override;
  PgLink(const PgLink&) = delete;
  PgLink(PgLink&&) = delete;
  PgLink& operator=(PgLink&&) = delete;
  PgLink& operator=(const PgLink&) = delete;

  void connect() override;
  void watch_idle() override;
  Inspection inspect() override;
  void probe() override;
  /// A lone Sync message (pipeline mode, nothing queued), answered by ReadyForQuery: the server
  /// parses and runs nothing, logs nothing and counts no statement, and the ParameterStatus
  /// messages that precede its ReadyForQuery bring the role back. Before PostgreSQL 14 the server
  /// reports no role, so there it asks `SELECT pg_is_in_recovery()`, a statement, and
  /// server_info() answers in_hot_standby from it. A heartbeat_query, if set, is sent instead.
  /// A pooled link always asks the role in SQL (kPooledServerQuery): see finish_connect().
  void heartbeat() override;
  void close() override;
  Arrivals take_arrivals() override;
  /// PQconsumeInput on the non-blocking socket, then what the socket callback does with it.
  std::optional<ProbeDone> read_answer() override;
  ServerInfo server_info() const override;

  /// Hands over the connection of a link that connected (idle, nothing in flight),
  /// for an owner of its own (the pool): the link stops watching it and is closed afterwards,
  /// reporting nothing more. The PGconn is back in blocking mode with libpq's own notice
  /// receiver. Null when the link is not idle on a connection of its own.
  PgConnPtr release();

 private:
  enum class Phase {
    closed,      ///< no PGconn
    resolving,   ///< name lookup in flight
    polling,     ///< the Connector's attempt (PQconnectPoll steps) in flight
    setting_up,  ///< setup_sql in flight
    idle,        ///< connected; watched for readability (or not watched at all)
    probing,     ///< probe query in flight
  };

  PgLink(const LinkSettings& settings, Loop& loop, Resolver& resolver, Connector* connector,
         ActivityNotes& notes, const ConnectionRef& who, LinkCallbacks& callbacks);
  void try_host();
  void host_failed(const Failure& failure);
  void on_resolved(Resolution resolution);
  void start_connect(const Conninfo& conninfo);
  void on_socket(Readiness ready);
  void on_attempt_done(AttemptOutcome outcome);
  /// The host's deadline: a last look at what the attempt has already received, then
  /// connect_timeout.
  void on_host_deadline();
  Failure host_timeout_failure() const;
  /// `late`: taken by the deadline's last look, with no time left for another round trip.
  void finish_connect(bool late);
  /// False (and the host failed with wrong_role) if the server's role does not fit.
  bool role_fits();
  void connected();  ///< setup done: idle, and on_connected
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

  const LinkSettings& settings_;
  Resolver& resolver_;
  Connector* connector_;
  ActivityNotes& notes_;
  const ConnectionRef& who_;
  LinkCallbacks& callbacks_;
  SocketWatchPtr watch_;
  TimerPtr host_deadline_;
  TimerPtr report_timer_;         ///< runs report_ from the loop
  std::function<void()> report_;  ///< what connect()/probe() could not say inline
  Phase phase_ = Phase::closed;
  std::size_t host_index_ = 0;
  bool standby_pass_ = false;               ///< prefer-standby's first pass: standbys only
  std::vector<std::string> host_failures_;  ///< "host:port: why" for each host tried
  PgConnPtr conn_;
  std::unique_ptr<ConnectAttempt> attempt_;  ///< the host's attempt in flight
  bool at_deadline_ = false;                 ///< on_host_deadline's last look is running
  std::unique_ptr<Lookup> lookup_;
  std::unique_ptr<Lookup> previous_lookup_;  ///< may still be running its callback
  std::optional<Failure> ending_;  ///< the server said it is ending the session (57P0x, FATAL)
  std::optional<Failure> query_error_;
  bool asking_recovery_ = false;           ///< the query in flight asks the role (pre-14 or pooled)
  std::optional<bool> recovery_from_sql_;  ///< its last answer (before PostgreSQL 14, or pooled)
  std::optional<bool> read_only_from_sql_;  ///< default_transaction_read_only, pooled only
  std::string started_from_sql_;            ///< pooled only: ServerInfo::server_started
  std::string address_from_sql_;            ///< pooled only: ServerInfo::server_address
  Arrivals arrived_;                        ///< read and not handed over yet
  std::vector<std::pair<const char*, std::string>> parameters_;  ///< last ParameterStatus seen
  PQnoticeReceiver libpq_receiver_ = nullptr;  ///< the one a connection came with (release())
  /// Set during read_answer(): query_done() leaves a probe's outcome here instead of reporting it.
  std::optional<ProbeDone>* answer_out_ = nullptr;
};

}  // namespace pgwd
