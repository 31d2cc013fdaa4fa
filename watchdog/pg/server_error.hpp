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

/// Whether a message from the server (an ErrorResponse or a NoticeResponse alike) says that this
/// session is over, and why. Keyed on the SQLSTATE whatever the message type: an immediate
/// shutdown sends `WARNING 57P01` (PostgreSQL 14+) and a crash `WARNING 57P02`, both as notices,
/// and the backend exits right after, so the connection is gone from that message on, without
/// waiting for EOF. Where the code alone does not say crash or planned stop, the message does:
/// `FATAL 57P01 terminating connection due to unexpected postmaster exit` (English messages
/// only: with another lc_messages it stays server_shutdown).
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

/// PQresultErrorField, "" where the result has no such field.
const char* error_field(const PGresult* result, int code) noexcept;

/// Collapses libpq's multi-line messages into one line for logs and events.
std::string one_line(std::string_view text);

}  // namespace pgwd
