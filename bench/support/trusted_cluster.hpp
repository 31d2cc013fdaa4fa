#pragma once

/// \file
/// The benchmarks' PostgreSQL: a TestCluster with one more role, `bench_trust`, that logs in
/// over 127.0.0.1 without a password (so that trust is what is measured unless SCRAM is the
/// point), sized by max_connections.

#include <memory>
#include <string>
#include <vector>

#include "support/test_cluster.hpp"

namespace pgwd::bench {

inline constexpr const char* kTrustedRole = "bench_trust";

/// Starts the cluster and creates the role. `extra_config` lines come after max_connections.
inline std::unique_ptr<testing::TestCluster> start_trusted_cluster(
    int max_connections, std::vector<std::string> extra_config = {}) {
  testing::ClusterSettings settings;
  settings.hba_lines = {std::string("host all ") + kTrustedRole + " 127.0.0.1/32 trust"};
  settings.extra_config = {"max_connections = " + std::to_string(max_connections)};
  for (std::string& line : extra_config) settings.extra_config.push_back(std::move(line));
  auto cluster = std::make_unique<testing::TestCluster>(settings);
  // The cluster runs with synchronous_commit=off for speed; the role must survive the storm's
  // `pg_ctl restart -m immediate` a fraction of a second later. Without this the commit could
  // still be in the WAL buffers then, and every reconnect failed on a role that no longer
  // existed (seen in CI: "only 0 of 100 came back", the server log full of `role "bench_trust"
  // does not exist`). One query string, one transaction: the SET holds for its commit.
  cluster->execute(std::string("SET synchronous_commit = on; CREATE ROLE ") + kTrustedRole +
                   " LOGIN");
  return cluster;
}

/// conninfo of the trusted role at 127.0.0.1:`port` (the cluster's, or a PgBouncer's).
inline std::string trusted_conninfo(int port, const std::string& application_name) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + kTrustedRole +
         " dbname=postgres application_name=" + application_name;
}

/// conninfo of the superuser over the cluster's unix socket (terminates, counts, creates roles).
inline std::string admin_conninfo(const testing::TestCluster& cluster) {
  return "host='" + cluster.socket_dir() + "' port=" + std::to_string(cluster.port()) +
         " user=postgres dbname=postgres application_name=bench_admin";
}

}  // namespace pgwd::bench
