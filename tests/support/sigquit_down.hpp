#pragma once

/// What a watched connection reports when its backend gets SIGQUIT: `pg_ctl stop -m immediate`,
/// or the postmaster resetting every backend after another one crashed.
///
/// PostgreSQL's SIGQUIT handler (quickdie, postgres.c) tries to send one WARNING before the
/// backend exits: 57P01 for an immediate stop, 57P02 after a crash. It tries on a best-effort
/// basis, from a signal handler ("it's dubious to call ereport() from a signal handler"; a
/// message is dropped if the signal lands while another is being sent), and PostgreSQL's own
/// tests accept a plain EOF in its place (src/test/recovery/t/013_crash_restart.pl and
/// 022_crash_temp_files.pl match "WARNING: terminating connection because of crash of another
/// server process|server closed the connection unexpectedly|..."). Here it went missing in about
/// 1 run of 100 beside the parallel suite, on a connection that was idle. So a test may not ask
/// the server for the WARNING. What pgwatchdog decides is asserted: the WARNING, when it came,
/// gives the cause and its SQLSTATE; without it the down is `closed`, and nothing else.

#include <doctest/doctest.h>

#include <string>

#include "pgwd/observer.hpp"

namespace pgwd::testing {

/// `with_warning`: the cause the WARNING gives (immediate_shutdown or server_crash), whose
/// SQLSTATE is `sqlstate`. Returns whether the WARNING came (false: an EOF alone, `closed`).
inline bool check_sigquit_down(const DownEvent& e, Cause with_warning, const std::string& sqlstate) {
  INFO("connection ", e.connection.index, ": ", to_string(e.cause), " ", e.sqlstate, " ",
       e.message);
  if (e.cause == Cause::closed) {
    MESSAGE("no WARNING ", sqlstate, " before EOF on connection ", e.connection.index,
            " (the server sends it on a best-effort basis): ", e.message);
    CHECK(e.sqlstate.empty());
    return false;
  }
  CHECK(e.cause == with_warning);
  CHECK(e.sqlstate == sqlstate);
  return true;
}

}  // namespace pgwd::testing
