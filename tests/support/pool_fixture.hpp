#pragma once

#include <chrono>
#include <string>

#include "pgwd/pool.hpp"
#include "pgwd/watchdog_thread.hpp"
#include "support/eventually.hpp"
#include "support/metrics_reader.hpp"
#include "support/test_cluster.hpp"

namespace pgwd::testing {

/// A throwaway cluster (declared first: it outlives everything) and a WatchdogThread to lend to.
/// Pools are made by the test: PoolOptions from options(), application_name = the pool's name,
/// so that its backends and statements can be found on the server.
struct PoolFixture {
  TestCluster cluster;
  WatchdogThread watchdog;

  explicit PoolFixture(ClusterSettings settings = {}) : cluster(std::move(settings)) {}

  PoolOptions options(const std::string& name, std::size_t max_size) const {
    PoolOptions o;
    o.dsn = cluster.conninfo(name);
    o.name = name;
    o.max_size = max_size;
    o.acquire_timeout = std::chrono::seconds(10);
    return o;
  }
  double metric(const std::string& name, const std::map<std::string, std::string>& labels) const {
    return metric_value(watchdog.metrics(), name, labels);
  }
  /// SELECT 1 on a leased connection; false (with the error in `error`) if it failed.
  static bool select_one(PGconn* connection, std::string* error = nullptr) {
    PGresult* result = PQexec(connection, "SELECT 1");
    const bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
    if (!ok && error != nullptr) *error = PQerrorMessage(connection);
    PQclear(result);
    return ok;
  }
};

}  // namespace pgwd::testing
