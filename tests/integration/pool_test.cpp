// pgwd::Pool against a real cluster: checkout by verdict (no round trip), return to idle, the
// watchdog's callbacks dropping dead idle connections, timeouts and bad input.
#include "pgwd/pool.hpp"

#include <doctest/doctest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "support/pool_fixture.hpp"
#include "support/standby_cluster.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::eventually;
using pgwd::testing::PoolFixture;

namespace {

int backend_pid(const Lease& lease) { return PQbackendPID(lease.get()); }

std::string exec_status(PGconn* connection, const char* sql) {
  PGresult* result = PQexec(connection, sql);
  std::string status = PQresStatus(PQresultStatus(result));
  PQclear(result);
  return status;
}

}  // namespace

TEST_CASE_FIXTURE(PoolFixture, "pool: a connection given back is lent while idle and handed out "
                               "again with no statement of the pool's own") {
  PoolOptions o = options("pool_basic", 2);
  Pool pool(watchdog, o);
  int first_pid = 0;
  {
    Lease lease = pool.acquire();
    REQUIRE(lease);
    first_pid = backend_pid(lease);
    CHECK(select_one(lease.get()));
    CHECK(pool.stats().in_use == 1);
    CHECK(metric("pgwatchdog_pool_connections", {{"pool", "pool_basic"}, {"state", "in_use"}}) == 1);
  }
  CHECK(pool.stats().idle == 1);
  CHECK(metric("pgwatchdog_pool_connections", {{"pool", "pool_basic"}, {"state", "idle"}}) == 1);
  {
    Lease again = pool.acquire();
    CHECK(backend_pid(again) == first_pid);  // LIFO: the one just given back
    CHECK(select_one(again.get()));
  }
  // The users' two SELECT 1 are all the server saw from the pool's sessions.
  CHECK(cluster.count_statements("pool_basic") == 2);
  CHECK(pool.stats().checkouts == 2);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: idle connections whose backends are terminated are dropped "
                               "at once (on_death) and replaced and never handed out") {
  // min_idle 0: the pool is 3 because it was used so, and it is 3 again after the losses.
  Pool pool(watchdog, options("pool_terminate", 3));
  {
    std::vector<Lease> filling;
    for (int i = 0; i < 3; ++i) filling.push_back(pool.acquire());
  }
  REQUIRE(eventually([&] { return pool.stats().idle == 3; }, 10s));
  const auto old_pids = cluster.backend_pids("pool_terminate");
  REQUIRE(old_pids.size() == 3);
  REQUIRE(cluster.terminate_backends("pool_terminate") == 3);

  // Told by the watchdog, before anyone asked: dropped while idle, and opened again.
  REQUIRE(eventually([&] { return pool.stats().dropped_while_idle == 3; }, 10s));
  REQUIRE(eventually([&] { return pool.stats().idle == 3; }, 10s));
  std::vector<Lease> leases;
  for (int i = 0; i < 3; ++i) {
    leases.push_back(pool.acquire());
    std::string error;
    CHECK_MESSAGE(select_one(leases.back().get(), &error), error);
    for (int old : old_pids) CHECK(backend_pid(leases.back()) != old);
  }
  CHECK(metric("pgwatchdog_pool_replaced_total",
               {{"pool", "pool_terminate"}, {"cause", "server_shutdown"}}) == 3);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: a terminated backend not yet reported is found dead at "
                               "checkout and another connection is handed out") {
  PoolOptions o = options("pool_race", 2);
  Pool pool(watchdog, o);
  {
    Lease a = pool.acquire();
    Lease b = pool.acquire();
  }
  REQUIRE(pool.stats().idle == 2);
  const std::vector<int> old_pids = cluster.backend_pids("pool_race");
  cluster.terminate_backends("pool_race");
  // Until the terminated ones have exited (the pool may have opened their replacements by then).
  REQUIRE(eventually([&] { return !cluster.any_backend_left("pool_race", old_pids); }, 10s));
  // Whether the watchdog's callback or the checkout's last look saw it first, no user sees it.
  for (int i = 0; i < 4; ++i) {
    Lease lease = pool.acquire();
    std::string error;
    CHECK_MESSAGE(select_one(lease.get(), &error), error);
  }
  const PoolStats stats = pool.stats();
  CHECK(stats.dropped_while_idle + stats.checkouts_found_dead == 2);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: acquire timeout names the pool - its size and the time "
                               "waited") {
  PoolOptions o = options("pool_full", 1);
  o.acquire_timeout = 200ms;
  // The one connection opened before anyone waits for it: its opening is not what is timed (on a
  // loaded machine it may take longer than the 200 ms below).
  o.min_idle = 1;
  Pool pool(watchdog, o);
  REQUIRE(eventually([&] { return pool.stats().idle == 1; }, 10s));
  Lease held = pool.acquire();
  const auto started = std::chrono::steady_clock::now();
  std::string message;
  try {
    (void)pool.acquire();
  } catch (const PoolTimeout& timeout) {
    message = timeout.what();
  }
  CHECK(std::chrono::steady_clock::now() - started >= 200ms);
  MESSAGE(message);
  CHECK(message.find("pool 'pool_full'") != std::string::npos);
  CHECK(message.find("1 in use, 0 idle, 0 opening, max_size 1") != std::string::npos);
  CHECK(message.find("acquire_timeout 200 ms") != std::string::npos);
  held.release();
  CHECK(select_one(pool.acquire().get()));  // and nothing else broke
}

TEST_CASE_FIXTURE(PoolFixture, "pool: when connecting fails the timeout says why and never "
                               "shows the password") {
  PoolOptions o = options("pool_badpw", 1);
  o.dsn = cluster.conninfo_with_password("pool_badpw", "not-the-Secret-42");
  o.acquire_timeout = 500ms;
  // The pool tries on its own (min_idle) and the acquire below waits only after one try has
  // failed: on a loaded machine a try may take longer than the 500 ms an acquire waits.
  o.min_idle = 1;
  Pool pool(watchdog, o);
  REQUIRE(eventually([&] { return pool.stats().connect_failures >= 1; }, 10s));
  std::string message;
  try {
    (void)pool.acquire();
  } catch (const PoolTimeout& timeout) {
    message = timeout.what();
  }
  MESSAGE(message);
  CHECK(message.find("password authentication failed") != std::string::npos);
  CHECK(message.find("not-the-Secret-42") == std::string::npos);
  CHECK(pool.stats().connect_failures >= 1);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: connections given back in a transaction are rolled back "
                               "and reused - broken or busy ones are closed") {
  PoolOptions o = options("pool_return", 1);
  Pool pool(watchdog, o);
  int pid = 0;
  SUBCASE("open transaction") {
    Lease lease = pool.acquire();
    pid = backend_pid(lease);
    CHECK(exec_status(lease.get(), "BEGIN") == "PGRES_COMMAND_OK");
    CHECK(exec_status(lease.get(), "CREATE TEMP TABLE t (x int)") == "PGRES_COMMAND_OK");
  }
  SUBCASE("failed transaction") {
    Lease lease = pool.acquire();
    pid = backend_pid(lease);
    CHECK(exec_status(lease.get(), "BEGIN") == "PGRES_COMMAND_OK");
    CHECK(exec_status(lease.get(), "SELECT 1/0") == "PGRES_FATAL_ERROR");
    CHECK(PQtransactionStatus(lease.get()) == PQTRANS_INERROR);
  }
  if (pid != 0) {
    CHECK(pool.stats().rollbacks == 1);
    Lease again = pool.acquire();
    CHECK(backend_pid(again) == pid);
    CHECK(PQtransactionStatus(again.get()) == PQTRANS_IDLE);
    CHECK(exec_status(again.get(), "SELECT * FROM t") == "PGRES_FATAL_ERROR");  // rolled back
    return;
  }
  SUBCASE("a query still running") {
    {
      Lease lease = pool.acquire();
      pid = backend_pid(lease);
      REQUIRE(PQsendQuery(lease.get(), "SELECT pg_sleep(30)") == 1);
    }
    CHECK(metric("pgwatchdog_pool_replaced_total", {{"pool", "pool_return"}, {"cause", "broken"}}) == 1);
    Lease next = pool.acquire();
    CHECK(backend_pid(next) != pid);
    CHECK(select_one(next.get()));
  }
  SUBCASE("discard()") {
    {
      Lease lease = pool.acquire();
      pid = backend_pid(lease);
      lease.discard();
    }
    CHECK(metric("pgwatchdog_pool_replaced_total", {{"pool", "pool_return"}, {"cause", "discarded"}}) == 1);
    CHECK(backend_pid(pool.acquire()) != pid);
  }
  SUBCASE("COPY left open") {
    {
      Lease lease = pool.acquire();
      pid = backend_pid(lease);
      CHECK(exec_status(lease.get(), "COPY (SELECT 1) TO STDOUT") == "PGRES_COPY_OUT");
    }
    CHECK(backend_pid(pool.acquire()) != pid);
  }
}

TEST_CASE_FIXTURE(PoolFixture, "pool: max_lifetime retires connections on return") {
  PoolOptions o = options("pool_lifetime", 1);
  o.max_lifetime = 50ms;
  Pool pool(watchdog, o);
  int pid = 0;
  {
    Lease lease = pool.acquire();
    pid = backend_pid(lease);
    const auto opened = std::chrono::steady_clock::now();
    // Hold it past its lifetime (a condition on the clock, not a sleep for another thread).
    REQUIRE(eventually([&] { return std::chrono::steady_clock::now() - opened > 60ms; }, 1s));
  }
  CHECK(metric("pgwatchdog_pool_replaced_total", {{"pool", "pool_lifetime"}, {"cause", "max_lifetime"}}) == 1);
  CHECK(backend_pid(pool.acquire()) != pid);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: max_lifetime retires idle connections") {
  PoolOptions o = options("pool_idle_life", 2);
  o.min_idle = 1;
  o.max_lifetime = 100ms;
  Pool pool(watchdog, o);
  REQUIRE(eventually([&] { return pool.stats().idle == 1; }, 10s));
  REQUIRE(eventually([&] { return pool.stats().dropped_while_idle >= 1; }, 5s));
  REQUIRE(eventually([&] { return pool.stats().idle == 1; }, 10s));  // min_idle opened again
}

TEST_CASE_FIXTURE(PoolFixture, "pool: bad options are refused with a message naming the option") {
  auto refused = [&](PoolOptions o) -> std::string {
    try {
      Pool pool(watchdog, std::move(o));
    } catch (const InvalidPoolOptions& bad) {
      return bad.what();
    }
    return "(accepted)";
  };
  PoolOptions o = options("pool_bad", 2);
  o.min_idle = 3;
  CHECK(refused(o).find("min_idle (3) is larger than max_size (2)") != std::string::npos);
  o = options("pool_bad", 0);
  CHECK(refused(o).find("max_size") != std::string::npos);
  o = options("", 1);
  CHECK(refused(o).find("name is required") != std::string::npos);
  o = options("pool_bad", 1);
  o.dsn = "host=x password=hunter2 port";  // malformed: no '=' after port
  const std::string malformed = refused(o);
  CHECK(malformed.find("dsn is not a valid") != std::string::npos);
  CHECK(malformed.find("hunter2") == std::string::npos);
  o = options("pool_bad", 1);
  o.acquire_timeout = 0ms;
  CHECK(refused(o).find("acquire_timeout") != std::string::npos);
  o = options("pool_bad", 1);
  o.connect_timeout = 0ms;
  CHECK(refused(o).find("connect_timeout") != std::string::npos);
  o = options("pool_bad", 1);
  o.max_concurrent_opens = 0;
  CHECK(refused(o).find("max_concurrent_opens") != std::string::npos);
  o = options("pool_bad", 1);
  o.dsn = "service=somewhere password=hunter2";  // libpq would look its host up, blocking
  const std::string service = refused(o);
  CHECK(service.find("pool 'pool_bad': service= is not supported") != std::string::npos);
  CHECK(service.find("hunter2") == std::string::npos);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: LISTEN on a pooled connection keeps its notifications "
                               "while idle - handed to the next lease") {
  PoolOptions o = options("pool_listen", 1);
  Pool pool(watchdog, o);
  {
    Lease lease = pool.acquire();
    CHECK(exec_status(lease.get(), "LISTEN pool_channel") == "PGRES_COMMAND_OK");
  }
  cluster.execute("NOTIFY pool_channel, 'one'");
  cluster.execute("NOTIFY pool_channel, 'two'");
  // The notifications reach the idle connection's socket a moment after the NOTIFY commits:
  // look at each checkout until both came (from the verdict, or libpq's queue if they landed
  // between take-back and now).
  std::vector<std::string> payloads;
  REQUIRE(eventually(
      [&] {
        Lease lease = pool.acquire();
        for (const auto& n : lease.notifications()) {
          CHECK(n.channel == "pool_channel");
          payloads.push_back(n.payload);
        }
        PQconsumeInput(lease.get());
        while (PGnotify* n = PQnotifies(lease.get())) {
          payloads.emplace_back(n->extra);
          PQfreemem(n);
        }
        return payloads.size() >= 2;
      },
      10s));
  CHECK(payloads == std::vector<std::string>{"one", "two"});
  // Still listening: LISTEN state survives the pool.
  cluster.execute("NOTIFY pool_channel, 'three'");
  REQUIRE(eventually(
      [&] {
        Lease lease = pool.acquire();
        for (const auto& n : lease.notifications()) payloads.push_back(n.payload);
        PQconsumeInput(lease.get());
        while (PGnotify* n = PQnotifies(lease.get())) {
          payloads.emplace_back(n->extra);
          PQfreemem(n);
        }
        return payloads.size() >= 3;
      },
      10s));
  CHECK(payloads.back() == "three");
  CHECK(cluster.count_statements("pool_listen") == 1);  // LISTEN: no probe was needed
}

TEST_CASE_FIXTURE(PoolFixture,
                  "pool: an acquire that finds only a connection with a probe in "
                  "flight wakes when the probe answers - it does not poll") {
  PoolOptions o = options("pool_probe_end", 1);
  o.min_idle = 1;
  // The heartbeat of the idle connection is a statement that takes two seconds to answer: the
  // acquire below must land while one is in flight, however late this thread runs after seeing
  // it (half a second was once too short a window on a loaded machine).
  o.heartbeat = 300ms;
  o.heartbeat_query = "SELECT pg_sleep(2)";
  Pool pool(watchdog, o);
  REQUIRE(eventually([&] { return pool.stats().idle == 1; }, 10s));
  const std::unique_ptr<PGconn, decltype(&PQfinish)> observer(
      PQconnectdb(cluster.conninfo("pool_probe_observer").c_str()), &PQfinish);
  REQUIRE(PQstatus(observer.get()) == CONNECTION_OK);
  const auto probing = [&] {
    PGresult* result =
        PQexec(observer.get(),
               "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
               "'pool_probe_end' AND state = 'active' AND query LIKE 'SELECT pg_sleep%'");
    const bool found =
        PQresultStatus(result) == PGRES_TUPLES_OK && std::string(PQgetvalue(result, 0, 0)) == "1";
    PQclear(result);
    return found;
  };
  REQUIRE(eventually(probing, 10s));

  const auto started = std::chrono::steady_clock::now();
  Lease lease = pool.acquire();
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  MESSAGE("waited ", waited.count(), " ms for the probe to answer");
  CHECK(select_one(lease.get()));
  // Found busy once, then woken by the probe's end: polling would have found it busy hundreds of
  // times. (A slow machine may see the next heartbeat's probe too.)
  CHECK(pool.stats().checkouts_found_busy >= 1);
  CHECK(pool.stats().checkouts_found_busy <= 3);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: keeps working through pg_ctl restart -m fast") {
  PoolOptions o = options("pool_restart", 5);
  o.min_idle = 5;
  Pool pool(watchdog, o);
  REQUIRE(eventually([&] { return pool.stats().idle == 5; }, 10s));
  cluster.restart(pgwd::testing::ShutdownMode::fast);
  int errors = 0;
  std::string first_error;
  for (int i = 0; i < 20; ++i) {
    Lease lease = pool.acquire();
    std::string error;
    if (!select_one(lease.get(), &error)) {
      ++errors;
      if (first_error.empty()) first_error = error;
    }
  }
  CHECK_MESSAGE(errors == 0, first_error);
  CHECK(pool.stats().dropped_while_idle + pool.stats().checkouts_found_dead >= 5);
}

TEST_CASE_FIXTURE(PoolFixture, "pool: destroyed with connections idle and leased: the idle are "
                               "closed - a lease outliving the pool closes its own") {
  auto pool = std::make_unique<Pool>(watchdog, options("pool_close", 3));
  Lease kept = pool->acquire();
  { Lease other = pool->acquire(); }
  pool.reset();
  REQUIRE(eventually([&] { return cluster.backend_pids("pool_close").size() == 1; }, 10s));
  CHECK(select_one(kept.get()));
  kept.release();
  REQUIRE(eventually([&] { return cluster.backend_pids("pool_close").empty(); }, 10s));
}

TEST_CASE_FIXTURE(PoolFixture,
                  "pool: a real server that says 57P03 is waited for - no failure "
                  "counted - and the waiting acquire gets a connection once it opens") {
  // A standby with hot_standby off refuses every session with 57P03 ("the database system is
  // not accepting connections"), as a server starting up does, for as long as it is a standby:
  // the test decides when it opens (promote), with no timing to guess.
  pgwd::testing::StandbySettings settings;
  settings.extra_config = {"hot_standby = off"};
  pgwd::testing::StandbyCluster standby(cluster, settings);
  PoolOptions o = options("pool_starting", 2);
  o.dsn = standby.conninfo("pool_starting");
  o.acquire_timeout = 60s;  // longer than the wait: the point is that nothing fails meanwhile
  o.backoff_initial = 20ms;
  Pool pool(watchdog, o);
  std::future<Lease> waiting = std::async(std::launch::async, [&] { return pool.acquire(); });
  // Several refusals, each waited out and none a failure, while the acquire keeps waiting.
  REQUIRE(eventually([&] { return pool.stats().connects_server_starting >= 3; }, 20s));
  CHECK(pool.stats().connect_failures == 0);
  CHECK(waiting.wait_for(0s) == std::future_status::timeout);
  standby.promote();
  REQUIRE(waiting.wait_for(30s) == std::future_status::ready);
  Lease lease = waiting.get();
  REQUIRE(lease);
  CHECK(select_one(lease.get()));
  CHECK(pool.stats().connect_failures == 0);
}

TEST_CASE_FIXTURE(PoolFixture,
                  "pool: an acquire waiting for an opening that hangs gets a "
                  "connection given back meanwhile") {
  // A connection given back while every waiter has an opening in flight goes to the next asker,
  // for at most twice the usual opening (unit tests: pool core). The waiting acquire() is
  // woken by no one then: it must look again when that ends by itself, or it would wait out
  // acquire_timeout beside an idle connection while its opening hangs.
  PoolOptions o = options("pool_passed_over", 2);
  o.acquire_timeout = 60s;
  o.connect_timeout = 60s;  // the hung opening outlives the test
  Pool pool(watchdog, o);
  Lease first = pool.acquire();
  REQUIRE(first);
  const int first_pid = backend_pid(first);
  cluster.pause_backend(cluster.postmaster_pid());  // new sessions hang; this one still works
  std::future<Lease> waiting = std::async(std::launch::async, [&] { return pool.acquire(); });
  REQUIRE(eventually([&] { return pool.stats().waiters == 1 && pool.stats().opening == 1; }, 10s));
  first.release();
  REQUIRE(waiting.wait_for(20s) == std::future_status::ready);
  Lease second = waiting.get();
  REQUIRE(second);
  CHECK(backend_pid(second) == first_pid);  // the one given back: the opening still hangs
  CHECK(select_one(second.get()));
  CHECK(pool.stats().opening == 1);
  cluster.resume_backend(cluster.postmaster_pid());
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
