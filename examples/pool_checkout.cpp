// pgwd::Pool, the connection pool built on lending: every idle connection is watched, so a
// checkout knows without a round trip whether its server ended the session meanwhile.
// Run: ./pool_checkout 'host=... dbname=...'   It checks out a connection 5 times, a second
// apart, runs SELECT 1 on it and gives it back; terminate its backends meanwhile and watch the
// pool replace them. docs/lending-and-pool.md shows this file.
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <pgwd/pool.hpp>
#include <pgwd/watchdog_thread.hpp>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONNINFO\n", argv[0]);
    return 2;
  }
  try {
    pgwd::WatchdogThread watchdog;                 // or a pgwd::Watchdog on your own loop
    pgwd::PoolOptions options;
    options.dsn = argv[1];
    options.name = "orders";                       // lending target and `pool` metric label
    options.max_size = 20;
    options.min_idle = 5;
    pgwd::Pool pool(watchdog, options);            // the watchdog must outlive the pool

    for (int round = 0; round < 5; ++round) {
      {
        pgwd::Lease lease = pool.acquire();        // any thread; PoolTimeout after acquire_timeout
        PGresult* r = PQexec(lease.get(), "SELECT 1");
        std::printf("checkout %d: %s\n", round, PQresStatus(PQresultStatus(r)));
        PQclear(r);
        for (const auto& n : lease.notifications()) {  // NOTIFYs that came while it was idle
          std::printf("NOTIFY %s: %s\n", n.channel.c_str(), n.payload.c_str());
        }
      }                                            // back to the pool: reset, then lent again
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  } catch (const std::exception& e) {  // InvalidPoolOptions, PoolTimeout: never the password
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
