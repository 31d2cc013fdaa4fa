// Makes a use of a PGconn after PQfinish visible. AddressSanitizer cannot see it: libpq is not
// instrumented, so a read of a freed PGconn inside libpq goes unnoticed (docs/design.md §8). The
// integration tests are linked with `-Wl,--wrap=PQ...` (tests/CMakeLists.txt) for every libpq
// function the library and the harness call with a PGconn: each call then lands here first,
// where it is checked that its PGconn was not finished, then forwarded to the real function. A
// finished PGconn used again aborts the test binary with the function's name, in every build,
// sanitized or not. Only calls from our own objects are wrapped; libpq's calls to itself are not.
//
// Kept as a set of finished addresses; every constructor below takes its address off the set
// again, since malloc may hand the same address to a new PGconn.
#include <libpq-fe.h>

#include "support/libpq_guard.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace {

std::mutex& guard_mutex() {
  static std::mutex mutex;
  return mutex;
}
std::unordered_set<const PGconn*>& finished() {
  static std::unordered_set<const PGconn*> set;
  return set;
}

void check_live(const PGconn* conn, const char* function) {
  if (!conn) return;
  const std::lock_guard lock(guard_mutex());
  if (finished().contains(conn)) {
    std::fprintf(stderr, "libpq_guard: %s() called on a PGconn after PQfinish (use after free)\n",
                 function);
    std::abort();
  }
}

std::unordered_map<std::thread::id, std::size_t>& polls_by_thread() {
  static std::unordered_map<std::thread::id, std::size_t> counts;
  return counts;
}

void count_poll() {
  const std::lock_guard lock(guard_mutex());
  ++polls_by_thread()[std::this_thread::get_id()];
}

PGconn* born(PGconn* conn) {
  if (conn) {
    const std::lock_guard lock(guard_mutex());
    finished().erase(conn);
  }
  return conn;
}

}  // namespace

// `__wrap_name(conn, args...)`: the check, then the real function. One line per function; the
// list of names is also in tests/CMakeLists.txt (the linker's --wrap options).
#define PGWD_GUARD(ret, name, params, args) \
  extern "C" ret __real_##name params;      \
  extern "C" ret __wrap_##name params {     \
    check_live(conn, #name);                \
    return __real_##name args;              \
  }

PGWD_GUARD(ConnStatusType, PQstatus, (const PGconn* conn), (conn))
PGWD_GUARD(int, PQsocket, (const PGconn* conn), (conn))
extern "C" PostgresPollingStatusType __real_PQconnectPoll(PGconn* conn);
extern "C" PostgresPollingStatusType __wrap_PQconnectPoll(PGconn* conn) {
  check_live(conn, "PQconnectPoll");
  count_poll();
  return __real_PQconnectPoll(conn);
}
PGWD_GUARD(char*, PQerrorMessage, (const PGconn* conn), (conn))
PGWD_GUARD(int, PQsetnonblocking, (PGconn * conn, int arg), (conn, arg))
PGWD_GUARD(const char*, PQparameterStatus, (const PGconn* conn, const char* param), (conn, param))
PGWD_GUARD(int, PQbackendPID, (const PGconn* conn), (conn))
PGWD_GUARD(int, PQserverVersion, (const PGconn* conn), (conn))
PGWD_GUARD(int, PQconsumeInput, (PGconn * conn), (conn))
PGWD_GUARD(PGnotify*, PQnotifies, (PGconn * conn), (conn))
PGWD_GUARD(int, PQisBusy, (PGconn * conn), (conn))
PGWD_GUARD(PGresult*, PQgetResult, (PGconn * conn), (conn))
PGWD_GUARD(int, PQsendQuery, (PGconn * conn, const char* query), (conn, query))
PGWD_GUARD(int, PQflush, (PGconn * conn), (conn))
PGWD_GUARD(void*, PQsslStruct, (PGconn * conn, const char* name), (conn, name))
PGWD_GUARD(PQnoticeReceiver, PQsetNoticeReceiver, (PGconn * conn, PQnoticeReceiver proc, void* arg),
           (conn, proc, arg))
PGWD_GUARD(PGVerbosity, PQsetErrorVerbosity, (PGconn * conn, PGVerbosity verbosity),
           (conn, verbosity))
PGWD_GUARD(PGTransactionStatusType, PQtransactionStatus, (const PGconn* conn), (conn))
PGWD_GUARD(PGresult*, PQexec, (PGconn * conn, const char* query), (conn, query))
PGWD_GUARD(int, PQenterPipelineMode, (PGconn * conn), (conn))
PGWD_GUARD(int, PQexitPipelineMode, (PGconn * conn), (conn))
PGWD_GUARD(int, PQpipelineSync, (PGconn * conn), (conn))
PGWD_GUARD(PGpipelineStatus, PQpipelineStatus, (const PGconn* conn), (conn))

extern "C" void __real_PQfinish(PGconn* conn);
extern "C" void __wrap_PQfinish(PGconn* conn) {
  check_live(conn, "PQfinish");  // a second PQfinish is a double free
  if (conn) {
    const std::lock_guard lock(guard_mutex());
    finished().insert(conn);
  }
  __real_PQfinish(conn);
}

#define PGWD_GUARD_BIRTH(name, params, args) \
  extern "C" PGconn* __real_##name params;   \
  extern "C" PGconn* __wrap_##name params {  \
    return born(__real_##name args);         \
  }

PGWD_GUARD_BIRTH(PQconnectStartParams,
                 (const char* const* keywords, const char* const* values, int expand_dbname),
                 (keywords, values, expand_dbname))
PGWD_GUARD_BIRTH(PQconnectStart, (const char* conninfo), (conninfo))
PGWD_GUARD_BIRTH(PQconnectdb, (const char* conninfo), (conninfo))
PGWD_GUARD_BIRTH(PQconnectdbParams,
                 (const char* const* keywords, const char* const* values, int expand_dbname),
                 (keywords, values, expand_dbname))

namespace pgwd::testing {

std::size_t connect_polls_on(std::thread::id thread) {
  const std::lock_guard lock(guard_mutex());
  const auto found = polls_by_thread().find(thread);
  return found == polls_by_thread().end() ? 0 : found->second;
}

std::unordered_map<std::thread::id, std::size_t> connect_polls_by_thread() {
  const std::lock_guard lock(guard_mutex());
  return polls_by_thread();
}

}  // namespace pgwd::testing
