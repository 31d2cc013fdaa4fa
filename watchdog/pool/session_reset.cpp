#include "pool/session_reset.hpp"

#include <poll.h>

#include <cerrno>

#include "pg/handles.hpp"

namespace pgwd {
namespace {

using Clock = std::chrono::steady_clock;

/// Reads until the running command's results are complete or the deadline passes.
bool wait_for_results(PGconn* connection, Clock::time_point deadline) {
  while (PQisBusy(connection) != 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd readable{.fd = PQsocket(connection), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&readable, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) return false;
    if (ready > 0 && PQconsumeInput(connection) == 0) return false;
  }
  return true;
}

/// Consumes every pending result; false if one of them is an error, or a COPY (which would
/// return the same result forever: not ours to end).
bool drain_results(PGconn* connection) {
  bool all_ok = true;
  while (PgResultPtr result{PQgetResult(connection)}) {
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      return false;
    }
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) all_ok = false;
  }
  return all_ok;
}

}  // namespace

ReturnedState reset_for_reuse(PGconn* connection, std::chrono::milliseconds rollback_timeout) {
  if (PQstatus(connection) != CONNECTION_OK) return ReturnedState::broken;
  // A user who read results with PQgetResult may leave the final NULL unread (ACTIVE with
  // nothing busy); a query still running (busy) or pipeline mode is not ours to finish.
  if (PQpipelineStatus(connection) != PQ_PIPELINE_OFF || PQisBusy(connection) != 0) {
    return ReturnedState::broken;
  }
  switch (PQtransactionStatus(connection)) {
    case PQTRANS_IDLE:
      return ReturnedState::reusable;
    case PQTRANS_ACTIVE:
      if (!drain_results(connection)) return ReturnedState::broken;
      return PQtransactionStatus(connection) == PQTRANS_IDLE ? ReturnedState::reusable
                                                             : ReturnedState::broken;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
      break;
    case PQTRANS_UNKNOWN:
    default:
      return ReturnedState::broken;
  }
  const auto deadline = Clock::now() + rollback_timeout;
  if (PQsendQuery(connection, "ROLLBACK") == 0) return ReturnedState::rollback_failed;
  // A blocking connection flushes inside PQsendQuery; a non-blocking one may not have yet.
  while (PQflush(connection) == 1) {
    if (Clock::now() >= deadline) return ReturnedState::rollback_failed;
    pollfd writable{.fd = PQsocket(connection), .events = POLLOUT, .revents = 0};
    ::poll(&writable, 1, 10);
  }
  if (!wait_for_results(connection, deadline)) return ReturnedState::rollback_failed;
  if (!drain_results(connection)) return ReturnedState::rollback_failed;
  return PQtransactionStatus(connection) == PQTRANS_IDLE ? ReturnedState::rolled_back
                                                         : ReturnedState::rollback_failed;
}

}  // namespace pgwd
