#include "metrics/metric_families.hpp"

#include <libpq-fe.h>

#include <string>

#include "pgwd/version.hpp"

namespace pgwd {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

std::string libpq_version() {
  const int v = PQlibVersion();  // e.g. 150020 -> "15.20"
  return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
}

}  // namespace

const prometheus::Histogram::BucketBoundaries& MetricFamilies::probe_duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return buckets;
}

const prometheus::Histogram::BucketBoundaries& MetricFamilies::loop_lag_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{0.001, 0.005, 0.01, 0.025, 0.05,
                                                               0.1,   0.25,  0.5,  1,     2.5};
  return buckets;
}

const prometheus::Histogram::BucketBoundaries& MetricFamilies::outage_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{0.01, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                               5,    10,   30,  60,   300, 900};
  return buckets;
}

MetricFamilies::MetricFamilies(prometheus::Registry& registry)
    : up(BuildGauge()
             .Name("pgwatchdog_up")
             .Help(
                 "1 while at least one connection of the target is connected (healthy or probing)")
             .Register(registry)),
      connections(BuildGauge()
                      .Name("pgwatchdog_connections")
                      .Help("Watched connections per life-cycle state")
                      .Register(registry)),
      in_hot_standby(BuildGauge()
                         .Name("pgwatchdog_in_hot_standby")
                         .Help("1 if the server a connection of the target last connected to or "
                               "probed is a hot standby, else 0")
                         .Register(registry)),
      disconnects(BuildCounter()
                      .Name("pgwatchdog_disconnects_total")
                      .Help("Connections lost, by cause")
                      .Register(registry)),
      reconnects(BuildCounter()
                     .Name("pgwatchdog_reconnects_total")
                     .Help("Connect attempts after the first, by result")
                     .Register(registry)),
      connect_failures(BuildCounter()
                           .Name("pgwatchdog_connect_failures_total")
                           .Help("Failed connect attempts (first ones included), by cause")
                           .Register(registry)),
      wakeups(BuildCounter()
                  .Name("pgwatchdog_wakeups_total")
                  .Help("Times the OS reported activity on an idle watched connection")
                  .Register(registry)),
      probes(BuildCounter()
                 .Name("pgwatchdog_probes_total")
                 .Help("Probe queries sent, by result")
                 .Register(registry)),
      probe_duration(BuildHistogram()
                         .Name("pgwatchdog_probe_duration_seconds")
                         .Help("Round trip of successful probes")
                         .Register(registry)),
      outage(BuildHistogram()
                 .Name("pgwatchdog_outage_seconds")
                 .Help("From a lost connection detected to the same connection healthy again")
                 .Register(registry)),
      notifications(BuildCounter()
                        .Name("pgwatchdog_notifications_total")
                        .Help("NOTIFY messages received on watched connections")
                        .Register(registry)),
      notices(BuildCounter()
                  .Name("pgwatchdog_notices_total")
                  .Help("NOTICE/WARNING messages received on watched connections")
                  .Register(registry)),
      server_changes(BuildCounter()
                         .Name("pgwatchdog_server_changes_total")
                         .Help("Times the server behind a pooled target was not the one that "
                               "answered before, by target and change (restart, other_server)")
                         .Register(registry)),
      event_loop_lag(BuildHistogram()
                         .Name("pgwatchdog_event_loop_lag_seconds")
                         .Help("How late the event loop ran a timer of the watchdog that was due, "
                               "by loop (the watchdog's name)")
                         .Register(registry)),
      slow_callbacks(BuildCounter()
                         .Name("pgwatchdog_slow_callbacks_total")
                         .Help("Callbacks of the watchdog that ran longer than its "
                               "slow_callback_threshold, by loop and phase")
                         .Register(registry)),
      build_info(BuildGauge()
                     .Name("pgwatchdog_build_info")
                     .Help("Version of pgwatchdog and of the libpq it runs with; always 1")
                     .Register(registry)),
      lent_connections(BuildGauge()
                           .Name("pgwatchdog_lent_connections")
                           .Help("Host-owned connections lent to the watchdog and not taken "
                                 "back yet, by target (dead ones included)")
                           .Register(registry)),
      lent_deaths(BuildCounter()
                      .Name("pgwatchdog_lent_deaths_total")
                      .Help("Lent connections found dead while lent, by target and cause")
                      .Register(registry)),
      lent_take_backs(BuildCounter()
                          .Name("pgwatchdog_lent_take_backs_total")
                          .Help("Take-backs of lent connections, by target and verdict (alive, "
                                "dead, busy, watchdog_stopped)")
                          .Register(registry)),
      lent_probes(BuildCounter()
                      .Name("pgwatchdog_lent_probes_total")
                      .Help("Probe queries sent on lent connections, by target")
                      .Register(registry)),
      lent_notifications(BuildCounter()
                             .Name("pgwatchdog_lent_notifications_total")
                             .Help("NOTIFY messages read on lent connections and handed back "
                                   "with the take-back verdict, by target")
                             .Register(registry)),
      server_lost(BuildCounter()
                      .Name("pgwatchdog_server_lost_total")
                      .Help("Times the evidence said a target's server as a whole went away "
                            "(the lenders were told to drop every idle connection), by target")
                      .Register(registry)) {
  build_info.Add({{"version", std::string(kVersion)}, {"libpq", libpq_version()}}).Set(1);
}

void MetricFamilies::unregister(prometheus::Registry& registry) {
  for (auto* f : {&up, &connections, &in_hot_standby, &build_info}) registry.Remove(*f);
  for (auto* f : {&disconnects, &reconnects, &connect_failures, &wakeups, &probes, &notifications,
                  &notices, &server_changes, &slow_callbacks})
    registry.Remove(*f);
  for (auto* f : {&probe_duration, &outage, &event_loop_lag}) registry.Remove(*f);
  registry.Remove(lent_connections);
  for (auto* f : {&lent_deaths, &lent_take_backs, &lent_probes, &lent_notifications, &server_lost})
    registry.Remove(*f);
}

}  // namespace pgwd
