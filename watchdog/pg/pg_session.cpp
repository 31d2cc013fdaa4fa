#include "pg/pg_session.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "pg/secrets.hpp"
#include "pg/server_error.hpp"
#include "pg/socket_error.hpp"

namespace pgwd {
namespace {

// ParameterStatus values compared after a wake-up: a change accounts for the activity.
constexpr const char* kTrackedParameters[] = {
    "in_hot_standby",
    "default_transaction_read_only",
    "TimeZone",
    "DateStyle",
    "IntervalStyle",
    "application_name",
    "client_encoding",
    "is_superuser",
    "session_authorization",
    "standard_conforming_strings",
    "server_version",
};

// PostgreSQL reports in_hot_standby and default_transaction_read_only since 14 (GUC_REPORT).
constexpr int kReportsRole = 140000;
constexpr const char* kRecoveryQuery = "SELECT pg_is_in_recovery()";
// Through a pooler the role must come from the backend that answers, in SQL: the ParameterStatus
// values at login are PgBouncer's cached welcome message (possibly from before a promotion), and
// a backend reports a change only when its own value changes. The same round trip names the
// server (its address and its postmaster's start time), the only way a restart or a failover
// behind a transaction pool shows at all. The start time as epoch seconds: its text form would
// follow each server connection's DateStyle and TimeZone.
constexpr const char* kPooledServerQuery =
    "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
    "extract(epoch FROM pg_postmaster_start_time()), "
    "coalesce(host(inet_server_addr()), 'local') || ':' || current_setting('port')";
constexpr int kPooledServerColumns = 4;

}  // namespace

PgSession::PgSession(PgConnPtr conn, bool owned, const SessionSettings& settings, std::string host,
                     Loop& loop, ActivityNotes& notes, const ConnectionRef& who,
                     SessionCallbacks& callbacks)
    : settings_(settings),
      host_(std::move(host)),
      notes_(notes),
      who_(who),
      callbacks_(&callbacks),
      watch_(loop.make_socket_watch([this](Readiness ready) { on_socket(ready); })),
      report_timer_(loop.make_timer([this] {
        auto report = std::move(report_);
        report_ = nullptr;
        if (report) report();  // the session's last action in this callback
      })),
      conn_(std::move(conn)),
      owned_(owned) {}

PgSession::PgSession(Owned owned, const SessionSettings& settings, std::string host, Loop& loop,
                     ActivityNotes& notes, const ConnectionRef& who, SessionCallbacks& callbacks)
    : PgSession(std::move(owned.conn), true, settings, std::move(host), loop, notes, who,
                callbacks) {
  libpq_receiver_ = PQsetNoticeReceiver(conn_.get(), &PgSession::receive_notice, this);
  // What the server said while we connected, redacted here, where the DSN is known.
  for (const Notice& notice : owned.startup_notices)
    take_notice(notice.severity, notice.sqlstate, clean(notice.message));
  remember_parameters();
}

PgSession::PgSession(Borrowed borrowed, const SessionSettings& settings, std::string host,
                     Loop& loop, ActivityNotes& notes, const ConnectionRef& who,
                     SessionCallbacks& callbacks)
    : PgSession(PgConnPtr(borrowed.conn, PgConnDeleter{.finish = false}), false, settings,
                std::move(host), loop, notes, who, callbacks) {
  forward_notice_ = borrowed.forward;
  forward_notice_arg_ = borrowed.forward_arg;
  PQsetNoticeReceiver(borrowed.conn, &PgSession::receive_notice, this);
  remember_parameters();
}

PgSession::~PgSession() {
  close();
}

void PgSession::close() {
  watch_->stop();
  report_timer_->disarm();
  report_ = nullptr;
  conn_.reset();  // PQfinish if owned; the socket is non-blocking, so this never waits
  phase_ = Phase::closed;
  ending_.reset();
  query_error_.reset();
  asking_recovery_ = false;
  recovery_from_sql_.reset();
  read_only_from_sql_.reset();
  started_from_sql_.clear();
  address_from_sql_.clear();
  arrived_ = {};
}

PgConnPtr PgSession::release() {
  if (phase_ != Phase::idle || !owned_ || !conn_) return nullptr;
  watch_->stop();  // before the socket has another owner
  PGconn* conn = conn_.get();
  PQsetNoticeReceiver(conn, libpq_receiver_, nullptr);
  if (PQsetnonblocking(conn, 0) != 0) return nullptr;  // cannot fail on an idle connection
  PgConnPtr released = std::move(conn_);
  close();
  return released;
}

void PgSession::report_later(std::function<void()> report) {
  report_ = std::move(report);
  report_timer_->arm(Nanos::zero());
}

Arrivals PgSession::take_arrivals() {
  Arrivals taken = std::move(arrived_);
  arrived_ = {};
  return taken;
}

void PgSession::on_socket(Readiness ready) {
  switch (phase_) {
    case Phase::setting_up:
      notes_.doing(CallbackPhase::setup, &who_);
      drive_query(ready);
      break;
    case Phase::probing:
      notes_.doing(CallbackPhase::probe, &who_);
      drive_query(ready);
      break;
    case Phase::idle:
      notes_.doing(CallbackPhase::inspect, &who_);
      callbacks_->on_readable();
      break;
    case Phase::closed:
      break;
  }
}

void PgSession::remember_parameters() {
  parameters_.clear();
  for (const char* name : kTrackedParameters) {
    const char* value = PQparameterStatus(conn_.get(), name);
    parameters_.emplace_back(name, value ? value : "");
  }
}

ServerInfo PgSession::server_info() const {
  ServerInfo info;
  if (!conn_) return info;
  const auto parameter = [&](const char* name) {
    const char* value = PQparameterStatus(conn_.get(), name);
    return std::string(value ? value : "");
  };
  info.backend_pid = PQbackendPID(conn_.get());
  info.server_version = PQserverVersion(conn_.get());
  info.host = host_;
  const auto on_off = [](bool value) { return std::string(value ? "on" : "off"); };
  if (settings_.pooled) {
    // Never PgBouncer's cached ParameterStatus: empty until the SQL answered.
    if (recovery_from_sql_) info.in_hot_standby = on_off(*recovery_from_sql_);
    if (read_only_from_sql_) info.default_transaction_read_only = on_off(*read_only_from_sql_);
    info.server_started = started_from_sql_;
    info.server_address = address_from_sql_;
    return info;
  }
  info.in_hot_standby = parameter("in_hot_standby");
  if (info.in_hot_standby.empty() && recovery_from_sql_)
    info.in_hot_standby = on_off(*recovery_from_sql_);
  info.default_transaction_read_only = parameter("default_transaction_read_only");
  return info;
}

void PgSession::watch_idle() {
  if (!conn_) return;
  phase_ = Phase::idle;
  // Level-triggered on purpose: PQconsumeInput reads about one buffer per call and cannot say
  // whether more is waiting, so an edge-triggered watch would strand messages.
  watch_->watch(PQsocket(conn_.get()), Interest::read);
  if (openssl_holds_bytes()) watch_->activate_read();
}

Inspection PgSession::inspect() {
  PGconn* conn = conn_.get();
  if (!conn) return {Inspection::Verdict::went_away, {Cause::closed, "", "not connected"}, {}};
  const int socket_error = pending_socket_error(PQsocket(conn));
  if (!PQconsumeInput(conn)) {
    watch_->stop();         // libpq has already closed the fd
    drain_notifications();  // what was read before the end may still say why (FATAL 57P01)
    const Failure failure = ending_ ? *ending_ : connection_lost(socket_error);
    return {Inspection::Verdict::went_away, failure, take_arrivals()};
  }
  // PQnotifies parses the input: NOTICE and the server's "terminating" message reach
  // receive_notice from inside it.
  bool explained = drain_notifications() > 0;
  explained = !arrived_.notices.empty() || explained;
  explained = parameters_changed() || explained;
  if (ending_) return {Inspection::Verdict::went_away, *ending_, take_arrivals()};
  if (PQstatus(conn) == CONNECTION_BAD) {
    watch_->stop();
    return {Inspection::Verdict::went_away, connection_lost(socket_error), take_arrivals()};
  }
  if (openssl_holds_bytes()) watch_->activate_read();
  return {explained ? Inspection::Verdict::explained : Inspection::Verdict::unexplained,
          {},
          take_arrivals()};
}

bool PgSession::begin_round_trip() {
  if (!conn_) {
    report_later([this] {
      callbacks_->on_probe_done({Failure{Cause::closed, "", "not connected"}, {}});
    });
    return false;
  }
  phase_ = Phase::probing;
  return true;
}

void PgSession::probe() {
  if (begin_round_trip()) send_query(settings_.probe_query.c_str());
}

void PgSession::heartbeat() {
  if (!begin_round_trip()) return;
  if (settings_.pooled) {
    send_query(kPooledServerQuery);
    asking_recovery_ = true;
    return;
  }
  if (!settings_.heartbeat_query.empty()) {
    send_query(settings_.heartbeat_query.c_str());
    return;
  }
  if (PQserverVersion(conn_.get()) < kReportsRole) {
    send_query(kRecoveryQuery);
    asking_recovery_ = true;
    return;
  }
  send_query(nullptr);  // a lone Sync
}

void PgSession::set_up(const std::string& setup_sql) {
  phase_ = Phase::setting_up;
  if (settings_.pooled) {
    // PgBouncer answered the login from its cache, with no server involved: the first message
    // links this client to a server (in session pooling for good, so that the server's FATAL
    // and PgBouncer's "server conn crashed?" reach the idle connection), proves that a query can
    // run, and brings the role. One round trip, the LISTENs included.
    const std::string setup = setup_sql + kPooledServerQuery;  // libpq copies it
    send_query(setup.c_str());
    asking_recovery_ = true;
    return;
  }
  send_query(setup_sql.c_str());
}

void PgSession::send_query(const char* sql) {
  PGconn* conn = conn_.get();
  query_error_.reset();
  asking_recovery_ = false;
  // A query that cannot even be sent is reported from the loop, not inside probe(). In
  // non-blocking mode neither PQsendQuery nor PQpipelineSync waits: they queue what the socket
  // does not take (libpq 15: pqPipelineFlush / pqFlush -> pqSendSome returns at EAGAIN), and
  // PQflush below and the write watch send the rest.
  //
  // No SQL: a lone Sync, sent in pipeline mode (libpq 14+) with nothing before it. The server
  // reads it outside any extended-query sequence, does nothing (no parse, no transaction, no log
  // line even with log_statement = all, nothing for pg_stat_statements) and answers
  // ReadyForQuery, with the ParameterStatus of any reported setting that changed (the role)
  // before it. An empty query would do the same round trip, but log_statement = all logs it as
  // an empty "statement: " line, and it runs an (empty) transaction.
  const bool sent = sql ? PQsendQuery(conn, sql) == 1
                        : PQenterPipelineMode(conn) == 1 && PQpipelineSync(conn) == 1;
  if (!sent) {
    report_later([this, failure = connection_lost(0)] { query_done(failure); });
    return;
  }
  const int flushed = PQflush(conn);
  if (flushed < 0) {
    report_later([this, failure = connection_lost(0)] { query_done(failure); });
    return;
  }
  watch_->watch(PQsocket(conn), flushed == 1 ? Interest::read_write : Interest::read);
}

void PgSession::drive_query(Readiness ready) {
  PGconn* conn = conn_.get();
  if (ready.readable) {
    const int socket_error = pending_socket_error(PQsocket(conn));
    if (!PQconsumeInput(conn)) {
      watch_->stop();
      drain_notifications();
      query_done(ending_ ? *ending_ : query_error_ ? *query_error_ : connection_lost(socket_error));
      return;
    }
  }
  bool finished = false;
  while (!PQisBusy(conn)) {
    const PgResultPtr result(PQgetResult(conn));
    drain_notifications();
    if (!result) {
      finished = true;
      break;
    }
    const ExecStatusType status = PQresultStatus(result.get());
    if (asking_recovery_ && status == PGRES_TUPLES_OK && PQntuples(result.get()) == 1) {
      recovery_from_sql_ = std::string_view(PQgetvalue(result.get(), 0, 0)) == "t";
      if (PQnfields(result.get()) == kPooledServerColumns) {
        read_only_from_sql_ = std::string_view(PQgetvalue(result.get(), 0, 1)) == "on";
        started_from_sql_ = PQgetvalue(result.get(), 0, 2);
        address_from_sql_ = PQgetvalue(result.get(), 0, 3);
      }
    }
    if ((status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) && !query_error_) {
      const std::string sqlstate = error_field(result.get(), PG_DIAG_SQLSTATE);
      const std::string severity = severity_of(result.get());
      const char* primary = PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY);
      const std::string message = primary ? primary : PQresultErrorMessage(result.get());
      const Cause cause = session_ending(severity, sqlstate, message).value_or(Cause::probe_failed);
      query_error_ = Failure{cause, sqlstate, clean(message)};
    }
  }
  if (ending_ && !finished) {
    // The server said it is ending the session (a WARNING 57P01 of an immediate shutdown comes
    // before the backend exits, not with an answer): the connection is over now, not at EOF.
    watch_->stop();
    query_done(ending_);
    return;
  }
  if (PQstatus(conn) == CONNECTION_BAD) {
    watch_->stop();
    query_done(query_error_ ? *query_error_ : connection_lost(0));
    return;
  }
  if (finished) {
    watch_->stop();
    // After a lone Sync: its PGRES_PIPELINE_SYNC was the answer, and the pipeline is empty again.
    if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(conn) && !query_error_)
      query_error_ = Failure{Cause::probe_failed, "", clean(PQerrorMessage(conn))};
    query_done(ending_ ? ending_ : query_error_);
    return;
  }
  if (ready.writable) {
    // Still sending: keep both directions watched, reading too, so that the server never blocks
    // on us while we wait to write.
    const int flushed = PQflush(conn);
    if (flushed < 0) {
      watch_->stop();
      query_done(connection_lost(0));
      return;
    }
    if (flushed == 0) watch_->watch(PQsocket(conn), Interest::read);
  }
  // Notifications read meanwhile wait in arrived_ for the answer: they go out with it.
  if (openssl_holds_bytes()) watch_->activate_read();
}

void PgSession::query_done(std::optional<Failure> failure) {
  // A probe is when new ParameterStatus values show; set_up()'s round trip leaves them as they
  // were at connect, for the first inspect() to compare against.
  if (!failure && phase_ == Phase::probing) parameters_changed();
  phase_ = Phase::idle;
  ProbeDone done{std::move(failure), take_arrivals()};
  if (answer_out_) {
    *answer_out_ = std::move(done);  // read_answer() returns it: nothing is called back
    return;
  }
  callbacks_->on_probe_done(done);
}

std::optional<ProbeDone> PgSession::read_answer() {
  if (phase_ != Phase::probing || !conn_) return std::nullopt;
  std::optional<ProbeDone> done;
  answer_out_ = &done;
  // As if the socket were reported readable: PQconsumeInput never waits on the non-blocking
  // socket, and reads nothing when nothing came. Nothing is written: an answer cannot come
  // before the query is all sent.
  drive_query({.readable = true, .writable = false});
  answer_out_ = nullptr;
  return done;
}

Failure PgSession::connection_lost(int socket_error) const {
  Failure failure;
  failure.cause =
      socket_error == ETIMEDOUT || socket_error == EHOSTUNREACH ? Cause::timed_out : Cause::closed;
  const std::string libpq = conn_ ? clean(PQerrorMessage(conn_.get())) : std::string();
  failure.message =
      socket_error != 0 ? fmt::format("{} ({})", std::strerror(socket_error), libpq) : libpq;
  return failure;
}

std::size_t PgSession::drain_notifications() {
  std::size_t count = 0;
  while (const PgNotifyPtr note{PQnotifies(conn_.get())}) {
    arrived_.notifications.push_back(
        {note->relname ? note->relname : "", note->extra ? note->extra : "", note->be_pid});
    ++count;
  }
  return count;
}

bool PgSession::parameters_changed() {
  bool changed = false;
  for (auto& [name, last] : parameters_) {
    const char* value = PQparameterStatus(conn_.get(), name);
    const std::string_view now = value ? value : "";
    if (now != last) {
      last = now;
      changed = true;
    }
  }
  return changed;
}

bool PgSession::openssl_holds_bytes() const {
  // OpenSSL may hold decrypted bytes the kernel no longer reports as readable: libpq's own waits
  // ask pgtls_read_pending() before they poll, which a loop cannot (docs/design.md §4).
  const auto* ssl = static_cast<const SSL*>(PQsslStruct(conn_.get(), "OpenSSL"));
  return ssl != nullptr && SSL_pending(ssl) > 0;
}

std::string PgSession::clean(std::string_view message) const {
  return one_line(redact_secrets(message, settings_.dsn_for_redaction));
}

void PgSession::receive_notice(void* self, const PGresult* result) {
  auto* session = static_cast<PgSession*>(self);
  // The owner of a lent connection hears everything it would have heard had it not lent it.
  if (session->forward_notice_) session->forward_notice_(session->forward_notice_arg_, result);
  session->take_notice(severity_of(result), error_field(result, PG_DIAG_SQLSTATE),
                       session->clean(error_field(result, PG_DIAG_MESSAGE_PRIMARY)));
}

void PgSession::take_notice(const std::string& severity, const std::string& sqlstate,
                            const std::string& message) {
  // On an idle connection libpq hands the server's parting words to the notice receiver.
  if (const auto cause = session_ending(severity, sqlstate, message)) {
    if (!ending_) ending_ = Failure{*cause, sqlstate, message};
    return;
  }
  arrived_.notices.push_back({severity, sqlstate, message});
}

}  // namespace pgwd
