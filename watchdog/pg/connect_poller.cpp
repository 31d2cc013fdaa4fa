#include "pg/connect_poller.hpp"

#include <poll.h>

#include <functional>
#include <utility>

#include "pg/server_error.hpp"

namespace pgwd {
namespace {

// What a PQconnectPoll step is about to do, for the slow-callback report.
const char* connect_step(ConnStatusType status) {
  switch (status) {
    case CONNECTION_STARTED:
      return "waiting for the TCP connection";
    case CONNECTION_MADE:
      return "sending the startup packet";
    case CONNECTION_SSL_STARTUP:
      return "TLS handshake";
    case CONNECTION_GSS_STARTUP:
      return "GSSAPI handshake";
    case CONNECTION_AWAITING_RESPONSE:
      return "authentication (SCRAM computes here)";
    case CONNECTION_AUTH_OK:
      return "waiting for the backend to start";
    default:
      return "connecting";
  }
}

Failure connection_error(PGconn* conn) {
  const ServerError error = parse_connection_error(PQerrorMessage(conn));
  // PgBouncer refuses a login with its own 08P01 errors too (no server to take it).
  const std::optional<Cause> cause = pooler_error(error.sqlstate, error.message);
  return {cause ? *cause : cause_from_sqlstate(error.sqlstate).value_or(Cause::connect_failed),
          error.sqlstate, error.message};
}

/// On the watch loop a connect step's watch (its share of the pass budget), else a plain one.
SocketWatchPtr make_watch(Loop& loop, GuardedLoop* watch_loop,
                          std::function<void(Readiness)> on_ready) {
  if (watch_loop)
    return watch_loop->make_socket_watch(std::move(on_ready),
                                         GuardedLoop::SocketWork::connect_step);
  return loop.make_socket_watch(std::move(on_ready));
}

}  // namespace

ConnectPoller::ConnectPoller(Loop& loop, GuardedLoop* watch_loop, const ConnectionRef& who,
                             Connector::Done done)
    : notes_(watch_loop),
      who_(who),
      done_(std::move(done)),
      watch_(make_watch(loop, watch_loop, [this](Readiness) { poll(); })) {}

ConnectPoller::~ConnectPoller() {
  watch_->stop();  // before libpq closes the socket (a recycled fd number must not be stale)
  conn_.reset();
}

std::optional<AttemptOutcome> ConnectPoller::start(const Conninfo& conninfo) {
  const ConnectParams params = conninfo.params();
  conn_.reset(
      PQconnectStartParams(params.keywords.data(), params.values.data(), /*expand_dbname=*/0));
  if (!conn_) return outcome(Failure{Cause::connect_failed, "", "out of memory"});
  libpq_receiver_ = PQsetNoticeReceiver(conn_.get(), &ConnectPoller::collect_notice, this);
  // The only way libpq reveals the SQLSTATE of a failed attempt is in verbose error text.
  PQsetErrorVerbosity(conn_.get(), PQERRORS_VERBOSE);
  if (PQstatus(conn_.get()) == CONNECTION_BAD) {
    Failure failure = connection_error(conn_.get());
    failure.cause = Cause::connect_failed;
    return outcome(std::move(failure));
  }
  arm_for(PGRES_POLLING_WRITING);  // libpq's contract: behave as if the first poll said WRITING
  return std::nullopt;
}

void ConnectPoller::arm_for(PostgresPollingStatusType polling) {
  waiting_for_ = polling == PGRES_POLLING_READING ? Interest::read : Interest::write;
  watch_->watch(PQsocket(conn_.get()), waiting_for_);
}

bool ConnectPoller::finish_if_ready() {
  // A step asks the socket for one thing; libpq must only be polled once it is ready for it
  // (while the TCP connect is in progress, a poll would take the socket as connected). A few
  // steps may be ready in a row (the startup packet written, the server's answer already in).
  bool ended = false;
  ended_ = &ended;
  for (int step = 0; step < 8; ++step) {
    pollfd ready{PQsocket(conn_.get()),
                 static_cast<short>(waiting_for_ == Interest::read ? POLLIN : POLLOUT), 0};
    if (ready.fd < 0 || ::poll(&ready, 1, 0) <= 0 || ready.revents == 0) break;
    poll();
    if (ended) return true;  // `done` ran: this poller may be gone
  }
  ended_ = nullptr;
  return false;
}

void ConnectPoller::poll() {
  if (notes_)
    notes_->doing(CallbackPhase::connect_poll, &who_, connect_step(PQstatus(conn_.get())));
  watch_->stop();  // the socket may change or close inside PQconnectPoll
  const PostgresPollingStatusType polling = PQconnectPoll(conn_.get());
  if (polling == PGRES_POLLING_OK) {
    finish(std::nullopt);
  } else if (polling == PGRES_POLLING_FAILED) {
    finish(connection_error(conn_.get()));
  } else {
    arm_for(polling);
  }
}

AttemptOutcome ConnectPoller::outcome(std::optional<Failure> failure) {
  AttemptOutcome result;
  result.notices = std::move(notices_);
  if (failure) {
    result.failure = std::move(*failure);
    conn_.reset();
  } else {
    // A handed-over PGconn must not point back at a poller that may be gone by the time libpq
    // calls its receiver: libpq's own again (its argument is null), until the new owner
    // installs its own.
    PQsetNoticeReceiver(conn_.get(), libpq_receiver_, nullptr);
    result.conn = std::move(conn_);
  }
  return result;
}

void ConnectPoller::finish(std::optional<Failure> failure) {
  AttemptOutcome result = outcome(std::move(failure));
  if (ended_) *ended_ = true;
  // `done` may destroy this poller: keep the callable on the stack, and touch nothing after.
  const Connector::Done done = std::move(done_);
  done(std::move(result));
}

void ConnectPoller::collect_notice(void* self, const PGresult* result) {
  static_cast<ConnectPoller*>(self)->notices_.push_back(
      {severity_of(result), error_field(result, PG_DIAG_SQLSTATE),
       error_field(result, PG_DIAG_MESSAGE_PRIMARY)});
}

}  // namespace pgwd
