// Half-open peer on the asio path: PostgreSQL in a network namespace goes dark (nft drops
// everything, no FIN, no RST). With tight keepalive options the kernel reports ETIMEDOUT within
// about tcp_user_timeout, and the AsioLoop watch must deliver it (an error condition reported
// readable+writable) as `timed_out`; once the path is back every connection reconnects.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "integration/asio_watchdog_harness.hpp"
#include "support/kernel_timed.hpp"
#include "support/network_namespace.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::AsioWatchdogFixture;
using pgwd::testing::ClusterSettings;
using pgwd::testing::NetworkNamespace;

namespace {

using Clock = std::chrono::steady_clock;

/// The namespace exists before the cluster starts in it and outlives it.
struct AsioNamespaceHolder : pgwd::testing::NetworkNamespaceFirst {
  ClusterSettings server_inside() const {
    ClusterSettings settings;
    settings.listen_address = ns.server_address();
    settings.command_prefix = ns.exec_prefix();
    settings.hba_lines = {"host all all " + ns.host_address() + "/32 scram-sha-256"};
    return settings;
  }
};

struct AsioHalfOpenFixture : AsioNamespaceHolder, AsioWatchdogFixture {
  AsioHalfOpenFixture() : AsioWatchdogFixture(server_inside()) {}
};

}  // namespace

TEST_CASE_FIXTURE(AsioHalfOpenFixture,
                  "asio: tight keepalive options detect a black hole in about tcp_user_timeout "
                  "(3 s) and reconnect when it is lifted") {
  constexpr int kConnections = 2;
  TargetOptions o = target("dark", kConnections);
  o.connect_timeout = 2s;
  o.keepalives_idle = 1s;
  o.keepalives_interval = 1s;
  o.keepalives_count = 2;
  o.tcp_user_timeout = 3s;
  // Keepalive alone: a heartbeat sent into the dark would be timed by TCP_USER_TIMEOUT from its
  // sending instead.
  o.heartbeat = 0ms;
  watchdog->add_target(o);
  REQUIRE(run_until([&] { return all_healthy("dark", kConnections); }, 10s));

  const pgwd::testing::KernelTimedSince dark([&] { ns.black_hole(); });
  const auto dark_at = dark.at();
  REQUIRE(run_until([&] { return observer.down.size() == static_cast<std::size_t>(kConnections); },
                    30s));
  for (const auto& d : observer.down) {
    CHECK(d.event.cause == Cause::timed_out);
    dark.check(d.at, 1500ms, 3s + 500ms, "connection " + std::to_string(d.event.connection.index));
    MESSAGE("asio: black hole to down ",
            std::chrono::duration_cast<std::chrono::milliseconds>(d.at - dark_at).count(), " ms (",
            d.event.message.substr(0, d.event.message.find(" (")), ")");
  }
  CHECK(metric("pgwatchdog_disconnects_total", {{"target", "dark"}, {"cause", "timed_out"}}) ==
        kConnections);

  const std::size_t healthy_before = observer.healthy.size();
  ns.restore();
  REQUIRE(run_until([&] { return all_healthy("dark", kConnections); }, 15s));
  CHECK(observer.healthy.size() == healthy_before + kConnections);
  CHECK(metric("pgwatchdog_up", {{"target", "dark"}}) == 1);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
