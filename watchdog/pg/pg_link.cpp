#include "pg/pg_link.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <chrono>
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

PgLink::PgLink(const LinkSettings& settings, Loop& loop, Resolver& resolver, Connector& connector,
               ActivityNotes& notes, const ConnectionRef& who, LinkCallbacks& callbacks)
    : PgLink(settings, loop, resolver, &connector, notes, who, callbacks) {}

PgLink::PgLink(const LinkSettings& settings, Loop& loop, Resolver& resolver, Connector* connector,
               ActivityNotes& notes, const ConnectionRef& who, LinkCallbacks& callbacks)
    : settings_(settings),
      resolver_(resolver),
      connector_(connector),
      notes_(notes),
      who_(who),
      callbacks_(callbacks),
      watch_(loop.make_socket_watch([this](Readiness ready) { on_socket(ready); })),
      host_deadline_(loop.make_timer([this] { on_host_deadline(); })),
      report_timer_(loop.make_timer([this] {
        auto report = std::move(report_);
        report_ = nullptr;
        if (report) report();  // the link's last action in this callback
      })) {}

PgLink::~PgLink() {
  close();
}

void PgLink::close() {
  watch_->stop();
  host_deadline_->disarm();
  report_timer_->disarm();
  report_ = nullptr;
  if (lookup_) lookup_->cancel();  // not destroyed here: we may be inside its callback
  attempt_.reset();                // cancels; the connector finishes its PGconn
  conn_.reset();                   // PQfinish; the socket is non-blocking, so this never waits
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

PgConnPtr PgLink::release() {
  if (phase_ != Phase::idle || !conn_) return nullptr;
  watch_->stop();  // before the socket has another owner
  PGconn* conn = conn_.get();
  PQsetNoticeReceiver(conn, libpq_receiver_, nullptr);
  if (PQsetnonblocking(conn, 0) != 0) return nullptr;  // cannot fail on an idle connection
  PgConnPtr released = std::move(conn_);
  close();
  return released;
}

void PgLink::report_later(std::function<void()> report) {
  report_ = std::move(report);
  report_timer_->arm(Nanos::zero());
}

Arrivals PgLink::take_arrivals() {
  Arrivals taken = std::move(arrived_);
  arrived_ = {};
  return taken;
}

void PgLink::connect() {
  close();
  host_index_ = 0;
  standby_pass_ = settings_.role == RoleRequirement::prefer_standby;
  host_failures_.clear();
  // From the loop: a host that fails at once (a bad address) must not report inside connect().
  report_later([this] { try_host(); });
}

void PgLink::try_host() {
  const HostEntry& host = settings_.hosts[host_index_];
  host_deadline_->arm(settings_.host_timeout);
  if (host.resolve) {
    phase_ = Phase::resolving;
    // The lookup being replaced may be the one whose callback brought us here: keep it alive.
    previous_lookup_ = std::move(lookup_);
    lookup_ = resolver_.resolve(*host.resolve, [this](Resolution r) { on_resolved(std::move(r)); });
    return;
  }
  Conninfo conninfo = settings_.conninfo;
  if (!host.host.empty()) conninfo.set("host", host.host);
  if (!host.hostaddr.empty()) conninfo.set("hostaddr", host.hostaddr);
  if (!host.port.empty()) conninfo.set("port", host.port);
  start_connect(conninfo);
}

void PgLink::host_failed(const Failure& failure) {
  // This host is done: close its attempt before trying the next one. What it said (notices)
  // goes along with the attempt's outcome.
  watch_->stop();
  host_deadline_->disarm();
  if (lookup_) lookup_->cancel();
  attempt_.reset();
  conn_.reset();
  ending_.reset();
  const HostEntry& host = settings_.hosts[host_index_];
  host_failures_.push_back(host.label() + ": " + failure.message);
  // Like libpq: a wrong password or a missing database would be the same on every host.
  const bool stop_walk =
      failure.cause == Cause::auth_failed || failure.cause == Cause::database_missing;
  if (!stop_walk && host_index_ + 1 < settings_.hosts.size()) {
    ++host_index_;
    try_host();
    return;
  }
  if (!stop_walk && standby_pass_) {  // prefer-standby: no standby found, now take any server
    standby_pass_ = false;
    host_index_ = 0;
    try_host();
    return;
  }
  phase_ = Phase::closed;
  Failure reported = failure;
  if (host_failures_.size() > 1)
    reported.message = fmt::format("{}", fmt::join(host_failures_, "; "));
  callbacks_.on_connect_failed({reported, take_arrivals()});
}

void PgLink::on_resolved(Resolution resolution) {
  if (phase_ != Phase::resolving) return;
  const HostEntry& host = settings_.hosts[host_index_];
  if (!resolution.error.empty()) {
    host_failed({Cause::dns, "",
                 fmt::format("could not resolve \"{}\": {}", *host.resolve, resolution.error)});
    return;
  }
  // One host entry per address: libpq tries them in order, and with hostaddr set it never does
  // a lookup of its own, while `host` still serves TLS verification and .pgpass.
  std::string hosts;
  std::string addresses;
  for (const std::string& address : resolution.addresses) {
    if (!hosts.empty()) {
      hosts += ',';
      addresses += ',';
    }
    hosts += *host.resolve;
    addresses += address;
  }
  Conninfo resolved = settings_.conninfo;
  resolved.set("host", hosts);
  resolved.set("hostaddr", addresses);
  if (!host.port.empty()) resolved.set("port", host.port);
  start_connect(resolved);
}

void PgLink::start_connect(const Conninfo& conninfo) {
  phase_ = Phase::polling;
  // Ends in on_attempt_done, from the loop (never inside start()), unless cancelled first; or
  // libpq refused it at once, and start() says so.
  Connector::Started started = connector_->start(
      conninfo, who_, [this](AttemptOutcome outcome) { on_attempt_done(std::move(outcome)); });
  if (started.outcome) {
    on_attempt_done(std::move(*started.outcome));
    return;
  }
  attempt_ = std::move(started.attempt);
  callbacks_.on_resolved();
}

void PgLink::on_socket(Readiness ready) {
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
      callbacks_.on_readable();
      break;
    case Phase::closed:
    case Phase::resolving:
    case Phase::polling:  // the Connector watches the socket meanwhile
      break;
  }
}

void PgLink::on_host_deadline() {
  // What came in time counts: the loop may run this timer before the attempt's socket callback
  // (the pass budget declines either, and no loop promises their order), so the attempt first
  // takes what it has already received (ConnectAttempt::finish_if_ready), as its own callback
  // would have. The same race, and the same answer, as a probe's deadline (read_answer()).
  if (phase_ == Phase::polling && attempt_) {
    at_deadline_ = true;
    if (attempt_->finish_if_ready()) return;  // on_attempt_done ran: nothing here to touch
    at_deadline_ = false;
  }
  host_failed(host_timeout_failure());
}

Failure PgLink::host_timeout_failure() const {
  return {
      Cause::connect_timeout, "",
      fmt::format("no connection within {}",
                  std::chrono::duration_cast<std::chrono::milliseconds>(settings_.host_timeout))};
}

void PgLink::on_attempt_done(AttemptOutcome outcome) {
  attempt_.reset();  // it is over; destroying it inside its own callback is allowed
  const bool late = std::exchange(at_deadline_, false);
  if (phase_ != Phase::polling) return;
  // What the server said while we connected, redacted here, where the DSN is known.
  for (const Notice& notice : outcome.notices)
    take_notice(notice.severity, notice.sqlstate, clean(notice.message));
  if (!outcome.conn) {
    Failure failure = std::move(outcome.failure);
    failure.message = clean(failure.message);
    host_failed(failure);
    return;
  }
  conn_ = std::move(outcome.conn);
  libpq_receiver_ = PQsetNoticeReceiver(conn_.get(), &PgLink::receive_notice, this);
  finish_connect(late);
}

void PgLink::finish_connect(bool late) {
  PGconn* conn = conn_.get();
  PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
  if (PQsetnonblocking(conn, 1) != 0) {
    host_failed({Cause::connect_failed, "", clean(PQerrorMessage(conn))});
    return;
  }
  remember_parameters();
  // Connected at the deadline's last look: a round trip still to come (a pooled target's first
  // query, setup_sql) has no time left within host_timeout.
  if (late && (settings_.pooled || !settings_.setup_sql.empty())) {
    host_failed(host_timeout_failure());
    return;
  }
  if (settings_.pooled) {
    // PgBouncer answered the login from its cache, with no server involved: the first message
    // links this client to a server (in session pooling for good, so that the server's FATAL
    // and PgBouncer's "server conn crashed?" reach the idle connection), proves that a query can
    // run, and brings the role. One round trip, the LISTENs included; connected only after it.
    const std::string setup = settings_.setup_sql + kPooledServerQuery;  // libpq copies it
    phase_ = Phase::setting_up;
    send_query(setup.c_str());
    asking_recovery_ = true;
    return;
  }
  if (!role_fits()) return;
  if (!settings_.setup_sql.empty()) {
    phase_ = Phase::setting_up;
    send_query(settings_.setup_sql.c_str());
    return;
  }
  connected();
}

bool PgLink::role_fits() {
  const RoleRequirement wanted = standby_pass_ ? RoleRequirement::standby : settings_.role;
  if (const auto mismatch = role_mismatch(wanted, server_info())) {
    host_failed({Cause::wrong_role, "", *mismatch});
    return false;
  }
  return true;
}

void PgLink::connected() {
  host_deadline_->disarm();
  phase_ = Phase::idle;
  callbacks_.on_connected({server_info(), take_arrivals()});
}

void PgLink::remember_parameters() {
  parameters_.clear();
  for (const char* name : kTrackedParameters) {
    const char* value = PQparameterStatus(conn_.get(), name);
    parameters_.emplace_back(name, value ? value : "");
  }
}

ServerInfo PgLink::server_info() const {
  ServerInfo info;
  if (!conn_) return info;
  const auto parameter = [&](const char* name) {
    const char* value = PQparameterStatus(conn_.get(), name);
    return std::string(value ? value : "");
  };
  info.backend_pid = PQbackendPID(conn_.get());
  info.server_version = PQserverVersion(conn_.get());
  info.host = settings_.hosts[host_index_].label();
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

void PgLink::watch_idle() {
  if (!conn_) return;
  phase_ = Phase::idle;
  // Level-triggered on purpose: PQconsumeInput reads about one buffer per call and cannot say
  // whether more is waiting, so an edge-triggered watch would strand messages.
  watch_->watch(PQsocket(conn_.get()), Interest::read);
  if (openssl_holds_bytes()) watch_->activate_read();
}

Inspection PgLink::inspect() {
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

bool PgLink::begin_round_trip() {
  if (!conn_) {
    report_later([this] {
      callbacks_.on_probe_done({Failure{Cause::closed, "", "not connected"}, {}});
    });
    return false;
  }
  phase_ = Phase::probing;
  return true;
}

void PgLink::probe() {
  if (begin_round_trip()) send_query(settings_.probe_query.c_str());
}

void PgLink::heartbeat() {
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

void PgLink::send_query(const char* sql) {
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

void PgLink::drive_query(Readiness ready) {
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

void PgLink::query_done(std::optional<Failure> failure) {
  if (phase_ == Phase::setting_up) {
    if (failure) {
      if (failure->cause == Cause::probe_failed) failure->cause = Cause::connect_failed;
      host_failed(*failure);
      return;
    }
    if (settings_.pooled && !role_fits()) return;  // the role only now known
    connected();
    return;
  }
  phase_ = Phase::idle;
  if (!failure) parameters_changed();  // a probe is when new ParameterStatus values show
  ProbeDone done{std::move(failure), take_arrivals()};
  if (answer_out_) {
    *answer_out_ = std::move(done);  // read_answer() returns it: nothing is called back
    return;
  }
  callbacks_.on_probe_done(done);
}

std::optional<ProbeDone> PgLink::read_answer() {
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

Failure PgLink::connection_lost(int socket_error) const {
  Failure failure;
  failure.cause =
      socket_error == ETIMEDOUT || socket_error == EHOSTUNREACH ? Cause::timed_out : Cause::closed;
  const std::string libpq = conn_ ? clean(PQerrorMessage(conn_.get())) : std::string();
  failure.message =
      socket_error != 0 ? fmt::format("{} ({})", std::strerror(socket_error), libpq) : libpq;
  return failure;
}

std::size_t PgLink::drain_notifications() {
  std::size_t count = 0;
  while (const PgNotifyPtr note{PQnotifies(conn_.get())}) {
    arrived_.notifications.push_back(
        {note->relname ? note->relname : "", note->extra ? note->extra : "", note->be_pid});
    ++count;
  }
  return count;
}

bool PgLink::parameters_changed() {
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

bool PgLink::openssl_holds_bytes() const {
  // OpenSSL may hold decrypted bytes the kernel no longer reports as readable: libpq's own waits
  // ask pgtls_read_pending() before they poll, which a loop cannot (docs/design.md §4).
  const auto* ssl = static_cast<const SSL*>(PQsslStruct(conn_.get(), "OpenSSL"));
  return ssl != nullptr && SSL_pending(ssl) > 0;
}

std::string PgLink::clean(std::string_view message) const {
  return one_line(redact_secrets(message, settings_.dsn_for_redaction));
}

void PgLink::receive_notice(void* self, const PGresult* result) {
  auto* link = static_cast<PgLink*>(self);
  link->take_notice(severity_of(result), error_field(result, PG_DIAG_SQLSTATE),
                    link->clean(error_field(result, PG_DIAG_MESSAGE_PRIMARY)));
}

void PgLink::take_notice(const std::string& severity, const std::string& sqlstate,
                         const std::string& message) {
  // On an idle connection libpq hands the server's parting words to the notice receiver.
  if (const auto cause = session_ending(severity, sqlstate, message)) {
    if (!ending_) ending_ = Failure{*cause, sqlstate, message};
    return;
  }
  arrived_.notices.push_back({severity, sqlstate, message});
}

}  // namespace pgwd
