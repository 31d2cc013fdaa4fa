// Issue 8 §3 as a test: the scenario of bench/pool_comparison (20 idle connections, every
// backend terminated, 1000 x checkout + SELECT 1 + give back from 4 threads), asserting what
// users see and what the server sees, never latency (that is the bench's: docs/lending-and-pool.md
// "Three pools side by side").
#include <doctest/doctest.h>

#include "compared_pools.hpp"
#include "scenario.hpp"
#include "support/pool_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd;
using namespace pgwd::comparison;
using pgwd::testing::PoolFixture;

TEST_CASE_FIXTURE(PoolFixture, "pool side by side: after every idle backend is terminated the "
                               "naive pool hands out dead connections - ping-on-checkout pays a "
                               "round trip per checkout - pgwatchdog's pool neither") {
  ScenarioResult naive;
  ScenarioResult pinging;
  ScenarioResult ours;
  {
    NaivePool pool(cluster.conninfo("sbs_naive"), false);
    naive = run_after_terminate(pool, cluster, "sbs_naive");
  }
  {
    NaivePool pool(cluster.conninfo("sbs_ping"), true);
    pinging = run_after_terminate(pool, cluster, "sbs_ping");
  }
  {
    PoolOptions o = options("sbs_pgwd", 20);
    Pool pool(watchdog, o);
    WatchdogPool adapter(pool);
    ours = run_after_terminate(adapter, cluster, "sbs_pgwd");
  }
  MESSAGE("\n", format_table({naive, pinging, ours}));

  // The naive pool: each of the 20 dead connections is handed out once and fails its user.
  CHECK(naive.errors == 20);
  CHECK(naive.successes == 980);
  // Ping-on-checkout: nobody sees an error, at one ping per checkout (and one per dead one).
  CHECK(pinging.errors == 0);
  CHECK(pinging.successes == 1000);
  CHECK(pinging.extra_round_trips >= 1000);
  // pgwatchdog: no error, and the server saw exactly the users' 1000 statements.
  CHECK(ours.errors == 0);
  CHECK(ours.successes == 1000);
  CHECK(ours.statements == 1000);
  CHECK(ours.extra_round_trips == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
