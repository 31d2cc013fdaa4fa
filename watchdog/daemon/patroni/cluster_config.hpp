#pragma once

/// \file
/// A Patroni cluster as the config file names it: a target with `patroni:` instead of a host.
/// pgwatchdog reads the cluster's members from Patroni's REST API and watches each as a target of
/// its own (docs/configuration.md "Patroni clusters").

#include <chrono>
#include <string>
#include <vector>

#include "pgwd/target_options.hpp"

namespace pgwd::daemon {

/// How often /cluster is read when the config does not say: Patroni's own loop_wait (10 s) is
/// how often the cluster itself can change its mind, so reading it more often finds little.
inline constexpr std::chrono::milliseconds kDefaultDiscoveryInterval{10'000};

/// At most this many REST endpoints per cluster (one per member is the usual list).
inline constexpr std::size_t kMaxRestEndpoints = 16;

struct PatroniCluster {
  /// `name` is the cluster's (each member's target is `NAME/MEMBER`); `conninfo` holds the
  /// connection options every member's DSN starts from (user, dbname, sslmode, the password),
  /// never a host or port: those come from each member. Every other field applies to every
  /// member target as it is.
  TargetOptions members;
  /// Base URLs of Patroni's REST API (`http://10.0.0.1:8008`), tried in turn until one answers.
  std::vector<std::string> rest_api;
  std::chrono::milliseconds discovery_interval = kDefaultDiscoveryInterval;

  const std::string& name() const noexcept { return members.name; }
  bool operator==(const PatroniCluster&) const = default;
};

}  // namespace pgwd::daemon
