#pragma once

#include <libpq-fe.h>

#include <optional>
#include <string>
#include <string_view>

#include "pgwd/connection_state.hpp"

namespace pgwd {

/// True for SQLSTATEs with which the server announces that it is ending this session (class 57P,
/// operator intervention). Keyed on the code, not the severity: an immediate shutdown sends
/// `WARNING 57P01`, a terminated backend `FATAL 57P01`.
bool ends_session(std::string_view sqlstate) noexcept;

/// The cause a SQLSTATE stands for, where it says something about the connection.
std::optional<Cause> cause_from_sqlstate(std::string_view sqlstate) noexcept;

/// The cause of an error PgBouncer itself sends (`ErrorResponse`, SQLSTATE 08P01 by default, then
/// it closes the client), told by its message, which is all that sets them apart (PgBouncer 1.18
/// texts, src/objects.c, src/janitor.c, src/server.c):
///  - "server conn crashed?": the server connection this client was linked to (session mode)
///    hit EOF or an error -> pooler_server_lost;
///  - "server login has been failing, ...": no server, and logging in to one keeps failing
///    (`server_login_retry`) -> pooler_login_failing;
///  - "query_wait_timeout": waited longer than `query_wait_timeout` for a server ->
///    pooler_queue_timeout.
/// nullopt for anything else, PgBouncer's other 08P01 errors included.
std::optional<Cause> pooler_error(std::string_view sqlstate, std::string_view message) noexcept;

/// Whether a message from the server (an ErrorResponse or a NoticeResponse alike) says that this
/// session is over, and why. Keyed on the SQLSTATE whatever the message type: an immediate
/// shutdown sends `WARNING 57P01` (PostgreSQL 14+) and a crash `WARNING 57P02`, both as notices,
/// and the backend exits right after, so the connection is gone from that message on, without
/// waiting for EOF. Where the code alone does not say crash or planned stop, the message does:
/// `FATAL 57P01 terminating connection due to unexpected postmaster exit` (English messages
/// only: with another lc_messages it stays server_shutdown). PgBouncer's own errors get their
/// pooler_error() cause.
std::optional<Cause> session_ending(std::string_view severity, std::string_view sqlstate,
                                    std::string_view message) noexcept;

struct ServerError {
  std::string sqlstate;  ///< empty if the text carries none (network errors)
  std::string message;   ///< one line, without libpq's LOCATION/HINT detail lines
};

/// Reads libpq's error text as produced with PQERRORS_VERBOSE, where server errors look like
/// `... failed: FATAL:  28P01: password authentication failed ...`. libpq offers no other way to
/// get the SQLSTATE of a failed connection attempt.
ServerError parse_connection_error(std::string_view text);

/// The message's severity: the non-localized field (PostgreSQL 9.6+), else the localized one.
/// PgBouncer sends only the latter (`S`), always in English.
std::string severity_of(const PGresult* result);

/// PQresultErrorField, "" where the result has no such field.
const char* error_field(const PGresult* result, int code) noexcept;

/// Collapses libpq's multi-line messages into one line for logs and events.
std::string one_line(std::string_view text);

}  // namespace pgwd
