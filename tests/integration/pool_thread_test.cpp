// pgwd::Pool from many threads at once, with probes in flight on idle connections (a short
// heartbeat) and backends terminated meanwhile; leases handed between threads. In the doctest
// suite "thread", which CI runs under ThreadSanitizer.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "pgwd/pool.hpp"
#include "support/pool_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::PoolFixture;

TEST_SUITE("thread") {
  TEST_CASE_FIXTURE(PoolFixture, "pool: acquire from 8 threads with probes in flight and "
                                 "backends terminated - leases given back on other threads") {
    PoolOptions o = options("pool_threads", 4);
    o.min_idle = 2;
    o.heartbeat = 5ms;  // idle connections are probed all the time: checkouts meet `busy`
    // Only a hang guard: 8 users share 4 connections whose backends are killed every 20 ms,
    // under TSan on a loaded machine; a PoolTimeout thrown in a user's thread would end the
    // process, not fail a check.
    o.acquire_timeout = 60s;
    Pool pool(watchdog, o);

    std::mutex handoff_mutex;
    std::condition_variable handoff_ready;
    std::deque<Lease> handoff;  // leases acquired by one thread, given back by another
    bool producers_done = false;
    std::atomic<int> errors{0};
    std::atomic<int> done{0};

    std::thread releaser([&] {
      std::unique_lock lock(handoff_mutex);
      for (;;) {
        handoff_ready.wait(lock, [&] { return !handoff.empty() || producers_done; });
        if (handoff.empty()) return;
        Lease lease = std::move(handoff.front());
        handoff.pop_front();
        lock.unlock();
        lease.release();
        lock.lock();
      }
    });
    std::thread killer([&] {
      while (done.load() < 8) {
        cluster.terminate_backends("pool_threads");
        std::this_thread::sleep_for(20ms);  // load, not synchronisation
      }
    });
    std::vector<std::thread> users;
    for (int t = 0; t < 8; ++t) {
      users.emplace_back([&, t] {
        for (int i = 0; i < 60; ++i) {
          Lease lease = pool.acquire();
          if (!select_one(lease.get())) {
            // A backend terminated while leased: the user sees it, as with any pool; the pool
            // must close it on return.
            errors.fetch_add(1);
          }
          if ((i + t) % 3 == 0) {
            const std::lock_guard lock(handoff_mutex);
            handoff.push_back(std::move(lease));
            handoff_ready.notify_one();
          }
        }
        done.fetch_add(1);
      });
    }
    for (auto& user : users) user.join();
    {
      const std::lock_guard lock(handoff_mutex);
      producers_done = true;
      handoff_ready.notify_one();
    }
    releaser.join();
    killer.join();
    const PoolStats stats = pool.stats();
    MESSAGE("checkouts ", stats.checkouts, ", found busy ", stats.checkouts_found_busy,
            ", found dead ", stats.checkouts_found_dead, ", dropped while idle ",
            stats.dropped_while_idle, ", errors while leased ", errors.load());
    CHECK(stats.checkouts == 480);
    CHECK(stats.in_use == 0);
    CHECK(stats.idle + stats.opening <= 4);
  }
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
