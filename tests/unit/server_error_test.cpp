#include "pg/server_error.hpp"

#include <doctest/doctest.h>

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd;

TEST_CASE("server error: the SQLSTATE of a failed connection attempt is read from verbose text") {
  // Verbatim from libpq 15 with PQERRORS_VERBOSE against a real server.
  const ServerError auth = parse_connection_error(
      "connection to server at \"127.0.0.1\", port 55432 failed: FATAL:  28P01: password "
      "authentication failed "
      "for user \"wd\"\nLOCATION:  auth_failed, auth.c:334\n");
  CHECK(auth.sqlstate == "28P01");
  CHECK(auth.message ==
        "connection to server at \"127.0.0.1\", port 55432 failed: FATAL: password authentication "
        "failed for user "
        "\"wd\"");
  const ServerError refused = parse_connection_error(
      "connection to server at \"127.0.0.1\", port 55433 failed: Connection refused\n\tIs the "
      "server running on that "
      "host and accepting TCP/IP connections?\n");
  CHECK(refused.sqlstate.empty());
  CHECK(refused.message.find("Connection refused Is the server running") != std::string::npos);
}

TEST_CASE("server error: SQLSTATEs map to causes - 57P0x ends the session whatever the severity") {
  CHECK(cause_from_sqlstate("57P01") == Cause::server_shutdown);
  CHECK(cause_from_sqlstate("57P02") == Cause::server_crash);
  CHECK(cause_from_sqlstate("57P03") == Cause::cannot_connect_now);
  CHECK(cause_from_sqlstate("57P05") == Cause::idle_session_timeout);
  CHECK(cause_from_sqlstate("28P01") == Cause::auth_failed);
  CHECK(cause_from_sqlstate("28000") == Cause::auth_failed);
  CHECK(cause_from_sqlstate("3D000") == Cause::database_missing);
  CHECK(cause_from_sqlstate("53300") == Cause::too_many_clients);
  CHECK_FALSE(cause_from_sqlstate("42601").has_value());
  CHECK(ends_session("57P01"));
  CHECK(ends_session("57P05"));
  CHECK_FALSE(ends_session("57014"));  // query_canceled: the session lives on
  CHECK_FALSE(ends_session(""));
}

TEST_CASE(
    "server error: the end of a session is told by its SQLSTATE - crash and planned stop "
    "apart") {
  // The texts are PostgreSQL 15's (postgres.c quickdie / ProcessInterrupts, be-secure.c).
  CHECK(session_ending("FATAL", "57P01", "terminating connection due to administrator command") ==
        Cause::server_shutdown);
  CHECK(session_ending("WARNING", "57P01",
                       "terminating connection due to immediate shutdown command") ==
        Cause::immediate_shutdown);
  CHECK(session_ending("WARNING", "57P02",
                       "terminating connection because of crash of another server process") ==
        Cause::server_crash);
  CHECK(session_ending("FATAL", "57P01",
                       "terminating connection due to unexpected postmaster exit") ==
        Cause::server_crash);
  CHECK(session_ending("FATAL", "57P05", "terminating connection due to idle-session timeout") ==
        Cause::idle_session_timeout);
  CHECK(session_ending("FATAL", "XX000", "something broke") == Cause::server_error);
  CHECK(session_ending("PANIC", "", "") == Cause::server_error);
  // Notices that do not end the session are notices.
  CHECK_FALSE(session_ending("WARNING", "01000", "hello").has_value());
  CHECK_FALSE(session_ending("NOTICE", "", "hi").has_value());
  CHECK_FALSE(session_ending("ERROR", "57014", "canceling statement").has_value());
}

TEST_CASE("server error: PgBouncer's own errors get causes of their own - told by the message") {
  // PgBouncer 1.18's texts (send_pooler_error: FATAL, 08P01 unless told otherwise).
  CHECK(session_ending("FATAL", "08P01", "server conn crashed?") == Cause::pooler_server_lost);
  CHECK(session_ending("FATAL", "08P01",
                       "server login has been failing, try again later (server_login_retry)") ==
        Cause::pooler_login_failing);
  // Newer PgBouncer adds the cached error to the same words.
  CHECK(session_ending("FATAL", "08P01",
                       "server login has been failing, cached error: connect failed "
                       "(server_login_retry)") == Cause::pooler_login_failing);
  CHECK(session_ending("FATAL", "08P01", "query_wait_timeout") == Cause::pooler_queue_timeout);
  // PgBouncer closes the client after each, and sends no non-localized severity: libpq's
  // fallback may leave it empty.
  CHECK(session_ending("", "08P01", "query_wait_timeout") == Cause::pooler_queue_timeout);
  // PgBouncer's other 08P01 errors, and the same words under another code, are not these.
  CHECK(session_ending("FATAL", "08P01", "client_login_timeout") == Cause::server_error);
  CHECK(session_ending("FATAL", "XX000", "server conn crashed?") == Cause::server_error);
  CHECK_FALSE(pooler_error("08P01", "no more connections allowed (max_client_conn)").has_value());
  CHECK_FALSE(pooler_error("", "query_wait_timeout").has_value());
  // The server's own word comes first: a terminate forwarded by PgBouncer stays server_shutdown.
  CHECK(session_ending("FATAL", "57P01", "terminating connection due to administrator command") ==
        Cause::server_shutdown);
  // A refused login, as libpq words it: the message carries libpq's prefix.
  const ServerError login = parse_connection_error(
      "connection to server at \"127.0.0.1\", port 6432 failed: FATAL:  08P01: server login has "
      "been failing, try again later (server_login_retry)\n");
  CHECK(login.sqlstate == "08P01");
  CHECK(pooler_error(login.sqlstate, login.message) == Cause::pooler_login_failing);
}

TEST_CASE("server error: one_line folds libpq's multi-line messages") {
  CHECK(one_line("server closed the connection unexpectedly\n\tThis probably means\n") ==
        "server closed the connection unexpectedly This probably means");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
