// pgwd::Pool when the server's host goes dark (network namespace + nft DROP: no FIN, no RST):
// with tight keepalives in the pool's DSN the kernel reports the idle connections dead, the
// watchdog tells the pool, and acquire() hands out none of them; once the path is back, new
// connections are opened and handed out. And while the host is dark, openings hang (no SYN is
// answered) and every acquire still fails on time.
#include <doctest/doctest.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include "pgwd/pool.hpp"
#include "support/network_namespace.hpp"
#include "support/pool_fixture.hpp"
#include "support/sched_stat.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::ClusterSettings;
using pgwd::testing::NetworkNamespace;
using pgwd::testing::eventually;
using pgwd::testing::PoolFixture;

namespace {

ClusterSettings inside(const NetworkNamespace& ns) {
  ClusterSettings settings;
  settings.listen_address = ns.server_address();
  settings.command_prefix = ns.exec_prefix();
  settings.hba_lines = {"host all all " + ns.host_address() + "/32 scram-sha-256"};
  return settings;
}

struct PoolHalfOpenFixture : pgwd::testing::NetworkNamespaceFirst, PoolFixture {
  PoolHalfOpenFixture() : PoolFixture(inside(ns)) {}
};

}  // namespace

TEST_CASE_FIXTURE(PoolHalfOpenFixture, "pool: a black hole drops every idle connection within "
                                       "tcp_user_timeout - none is handed out - new ones after") {
  PoolOptions o = options("pool_dark", 3);
  o.min_idle = 3;
  // Tight keepalives through libpq's own options: the pool's connections are the host's.
  o.dsn += " keepalives=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=2"
           " tcp_user_timeout=3000 connect_timeout=2";
  o.acquire_timeout = 500ms;
  Pool pool(watchdog, o);
  REQUIRE(eventually([&] { return pool.stats().idle == 3; }, 10s));

  ns.black_hole();
  const auto dark_at = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return pool.stats().dropped_while_idle == 3; }, 8s));
  MESSAGE("all 3 dropped ",
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - dark_at).count(),
          " ms after the black hole");
  // The kernel's ETIMEDOUT (timed_out), whichever way the watchdog told it: each death
  // (on_death), or the server as a whole (on_server_lost, once all of them died).
  double replaced = 0;
  std::string by_cause;
  for (const char* cause : {"timed_out", "server_lost", "closed"}) {
    const double n = metric("pgwatchdog_pool_replaced_total", {{"pool", "pool_dark"}, {"cause", cause}});
    if (n > 0) replaced += n;  // -1: no such series
    by_cause += std::string(cause) + "=" + std::to_string(n) + " ";
  }
  CHECK_MESSAGE(replaced == 3, by_cause);
  // While dark: nothing to hand out, and the timeout says so (never a dead connection).
  CHECK_THROWS_AS((void)pool.acquire(), PoolTimeout);

  ns.restore();
  Lease lease;
  REQUIRE(eventually(
      [&] {
        try {
          lease = pool.acquire();
          return true;
        } catch (const PoolTimeout&) {
          return false;
        }
      },
      30s));
  CHECK(select_one(lease.get()));
}

TEST_CASE_FIXTURE(PoolHalfOpenFixture,
                  "pool: with the host black-holed every queued async acquire "
                  "fails within acquire_timeout plus a bound") {
  ns.black_hole();
  PoolOptions o = options("pool_black_hole", 4);
  o.acquire_timeout = 300ms;
  // Longer than acquire_timeout, and no connect_timeout in the DSN: the openings still hang when
  // the acquires are due, and only the acquires' own deadlines can end them.
  o.connect_timeout = 5s;
  o.max_concurrent_opens = 2;
  Pool pool(watchdog, o);

  constexpr std::size_t kAcquires = 6;
  // What pgwatchdog controls: the housekeeper wakes at each deadline. Generous for a loaded
  // machine; a blocking opening would hold them for the kernel's SYN retries (minutes).
  constexpr auto kBound = 250ms;
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::duration> waited;
  std::vector<std::string> errors;
  int leased = 0;
  // The housekeeper (a thread of this process) waiting for a CPU makes it late: the machine's.
  const pgwd::testing::ProcessCpuWaitSince process_wait(::getpid());
  for (std::size_t i = 0; i < kAcquires; ++i) {
    const auto started = std::chrono::steady_clock::now();
    pool.acquire_async([&, started](Lease lease, std::exception_ptr error) {
      const auto took = std::chrono::steady_clock::now() - started;
      std::string what;
      try {
        if (error) std::rethrow_exception(error);
      } catch (const PoolTimeout& timeout) {
        what = timeout.what();
      } catch (const std::exception& other) {
        what = std::string("not a PoolTimeout: ") + other.what();
      }
      const std::lock_guard lock(mutex);
      if (lease) ++leased;
      waited.push_back(took);
      errors.push_back(what);
    });
  }
  REQUIRE(eventually(
      [&] {
        const std::lock_guard lock(mutex);
        return waited.size() == kAcquires;
      },
      10s));
  const std::lock_guard lock(mutex);
  const auto machine = process_wait.waited();
  CHECK(leased == 0);
  for (std::size_t i = 0; i < waited.size(); ++i) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(waited[i]);
    CHECK_MESSAGE(waited[i] >= o.acquire_timeout, ms.count(), " ms");
    CHECK_MESSAGE(waited[i] < o.acquire_timeout + kBound + machine, ms.count(),
                  " ms; the process's threads waited ",
                  std::chrono::duration_cast<std::chrono::milliseconds>(machine).count(),
                  " ms for a CPU");
    CHECK_MESSAGE(errors[i].find("2 opening") != std::string::npos, errors[i]);
  }
  // Two openings at once, hanging: the bound, not one per acquire.
  CHECK(pool.stats().opening == 2);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
