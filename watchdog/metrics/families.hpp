#pragma once

// Every metric family pgwatchdog exports, in the order /metrics writes them. docs/metrics.md is
// the contract: names, types, labels and help texts are public (dashboards, alerts, queries).

#include "metrics/series.hpp"

namespace pgwd::families {

inline constexpr double kProbeDurationBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5};
inline constexpr double kOutageBuckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                            5,    10,   30,  60,   300, 900};
inline constexpr double kLoopLagBuckets[] = {0.001, 0.005, 0.01, 0.025, 0.05,
                                             0.1,   0.25,  0.5,  1,     2.5};
// From "an idle connection was there" (microseconds) to "waited for one to be opened or
// returned" (milliseconds to the acquire timeout).
inline constexpr double kPoolAcquireBuckets[] = {0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005,
                                                 0.01,    0.05,    0.1,    0.5,    1,     5};

using enum MetricType;

// The targets' (TargetSeries).
inline constexpr Family up{
    0, "pgwatchdog_up",
    "1 while at least one connection of the target is connected (healthy or probing)", gauge};
inline constexpr Family in_hot_standby{1, "pgwatchdog_in_hot_standby",
                                       "1 if the server a connection of the target last connected "
                                       "to or probed is a hot standby, else 0",
                                       gauge};
inline constexpr Family connections{2, "pgwatchdog_connections",
                                    "Watched connections per life-cycle state", gauge};
inline constexpr Family disconnects{3, "pgwatchdog_disconnects_total", "Connections lost, by cause",
                                    counter};
inline constexpr Family reconnects{4, "pgwatchdog_reconnects_total",
                                   "Connect attempts after the first, by result", counter};
inline constexpr Family connect_failures{5, "pgwatchdog_connect_failures_total",
                                         "Failed connect attempts (first ones included), by cause",
                                         counter};
inline constexpr Family connect_hedges{
    6, "pgwatchdog_connect_hedges_total",
    "Connect attempts started beside one still on its way while the target was down (a hedge: "
    "the first to connect wins, the other is closed)",
    counter};
inline constexpr Family server_changes{7, "pgwatchdog_server_changes_total",
                                       "Times the server behind a pooled target was not the one "
                                       "that answered before, by target and change (restart, "
                                       "other_server)",
                                       counter};
inline constexpr Family wakeups{8, "pgwatchdog_wakeups_total",
                                "Times the OS reported activity on an idle watched connection",
                                counter};
inline constexpr Family probes{9, "pgwatchdog_probes_total", "Probe queries sent, by result",
                               counter};
inline constexpr Family probe_duration{10, "pgwatchdog_probe_duration_seconds",
                                       "Round trip of successful probes", histogram,
                                       kProbeDurationBuckets};
inline constexpr Family outage{
    11, "pgwatchdog_outage_seconds",
    "From a lost connection detected to the same connection healthy again", histogram,
    kOutageBuckets};
inline constexpr Family notifications{12, "pgwatchdog_notifications_total",
                                      "NOTIFY messages received on watched connections", counter};
inline constexpr Family notices{13, "pgwatchdog_notices_total",
                                "NOTICE/WARNING messages received on watched connections", counter};
// A watchdog's loop (LoopSeries).
inline constexpr Family event_loop_lag{
    14, "pgwatchdog_event_loop_lag_seconds",
    "How late the event loop ran a timer of the watchdog that was due, by loop (the watchdog's "
    "name)",
    histogram, kLoopLagBuckets};
inline constexpr Family slow_callbacks{15, "pgwatchdog_slow_callbacks_total",
                                       "Callbacks of the watchdog that ran longer than its "
                                       "slow_callback_threshold, by loop and phase",
                                       counter};
// The store's own (Store).
inline constexpr Family build_info{16, "pgwatchdog_build_info",
                                   "Version of pgwatchdog and of the libpq it runs with; always 1",
                                   gauge};
// Connections hosts lend (pgwd/lending.hpp), by the loans' target (LentSeries).
inline constexpr Family lent_connections{17, "pgwatchdog_lent_connections",
                                         "Host-owned connections lent to the watchdog and not "
                                         "taken back yet, by target (dead ones included)",
                                         gauge};
inline constexpr Family lent_deaths{18, "pgwatchdog_lent_deaths_total",
                                    "Lent connections found dead while lent, by target and cause",
                                    counter};
inline constexpr Family lent_take_backs{19, "pgwatchdog_lent_take_backs_total",
                                        "Take-backs of lent connections, by target and verdict "
                                        "(alive, dead, busy, watchdog_stopped)",
                                        counter};
inline constexpr Family lent_probes{
    20, "pgwatchdog_lent_probes_total",
    "Round trips made on lent connections (probes and heartbeats), by target, counted at take-back",
    counter};
inline constexpr Family lent_notifications{21, "pgwatchdog_lent_notifications_total",
                                           "NOTIFY messages read on lent connections and handed "
                                           "back with the take-back verdict, by target",
                                           counter};
inline constexpr Family server_lost{22, "pgwatchdog_server_lost_total",
                                    "Times the evidence said a target's server as a whole went "
                                    "away (the lenders were told to drop every idle connection), "
                                    "by target",
                                    counter};
// The daemon's (daemon/daemon_metrics.hpp).
inline constexpr Family shard_info{23, "pgwatchdog_shard_info",
                                   "Which shard of the targets this process watches (--shard, "
                                   "--total-shards); always 1",
                                   gauge};
inline constexpr Family shard_targets{
    24, "pgwatchdog_shard_targets",
    "Targets this process watches: those of the config that hash to its shard", gauge};
inline constexpr Family log_messages_dropped{25, "pgwatchdog_log_messages_dropped_total",
                                             "Log lines dropped because stderr did not take them "
                                             "fast enough (the log queue was full)",
                                             counter};
// pgwd::Pool's (pool/pool_series.hpp).
inline constexpr Family pool_connections{26, "pgwatchdog_pool_connections",
                                         "Connections of a pgwd::Pool per state: idle (lent to "
                                         "the watchdog), in_use (leased), opening",
                                         gauge};
inline constexpr Family pool_waiters{27, "pgwatchdog_pool_waiters",
                                     "acquire() calls of a pgwd::Pool waiting for a connection",
                                     gauge};
inline constexpr Family pool_acquire{28, "pgwatchdog_pool_acquire_seconds",
                                     "Time acquire() took to hand out a connection", histogram,
                                     kPoolAcquireBuckets};
inline constexpr Family pool_found_dead{29, "pgwatchdog_pool_checkouts_found_dead_total",
                                        "Checkouts whose take-back said dead (another connection "
                                        "was handed out instead)",
                                        counter};
inline constexpr Family pool_replaced{30, "pgwatchdog_pool_replaced_total",
                                      "Connections a pgwd::Pool closed, by cause", counter};
inline constexpr Family pool_given_to_next_asker{
    31, "pgwatchdog_pool_given_to_next_asker_total",
    "Connections given back while every waiter had an opening of its own in flight, left for the "
    "next acquire rather than handed to a waiter",
    counter};

// Patroni clusters the daemon discovers (daemon/patroni/cluster_series.hpp).
inline constexpr Family patroni_discovery_up{
    32, "pgwatchdog_patroni_discovery_up",
    "1 if the last reading of a Patroni cluster's members (GET /cluster) got a valid answer, by "
    "cluster",
    gauge};
inline constexpr Family patroni_discovery_errors{
    33, "pgwatchdog_patroni_discovery_errors_total",
    "Failed readings of a Patroni cluster's members, by cluster and reason (unreachable, "
    "http_status, malformed, member_refused)",
    counter};
inline constexpr Family patroni_members{
    34, "pgwatchdog_patroni_members",
    "Members of a Patroni cluster watched as targets of their own, by cluster", gauge};
inline constexpr Family patroni_leader{
    35, "pgwatchdog_patroni_leader",
    "The member a Patroni cluster names as its leader, by cluster and member; always 1", gauge};
inline constexpr Family patroni_primaries{
    36, "pgwatchdog_patroni_primaries",
    "Members of a Patroni cluster whose server answers as a primary right now, by cluster: more "
    "than 1 is a split brain",
    gauge};

// Every family above, once. Two branches that each add a family take the same next order, and a
// merge of both compiles: the check below fails it instead, as it fails a duplicate name.
inline constexpr const Family* kAll[] = {&up,
                                         &in_hot_standby,
                                         &connections,
                                         &disconnects,
                                         &reconnects,
                                         &connect_failures,
                                         &connect_hedges,
                                         &server_changes,
                                         &wakeups,
                                         &probes,
                                         &probe_duration,
                                         &outage,
                                         &notifications,
                                         &notices,
                                         &event_loop_lag,
                                         &slow_callbacks,
                                         &build_info,
                                         &lent_connections,
                                         &lent_deaths,
                                         &lent_take_backs,
                                         &lent_probes,
                                         &lent_notifications,
                                         &server_lost,
                                         &shard_info,
                                         &shard_targets,
                                         &log_messages_dropped,
                                         &pool_connections,
                                         &pool_waiters,
                                         &pool_acquire,
                                         &pool_found_dead,
                                         &pool_replaced,
                                         &pool_given_to_next_asker,
                                         &patroni_discovery_up,
                                         &patroni_discovery_errors,
                                         &patroni_members,
                                         &patroni_leader,
                                         &patroni_primaries};

namespace detail {
consteval bool orders_are_0_to_n() {
  constexpr std::size_t n = std::size(kAll);
  for (std::size_t order = 0; order < n; ++order) {
    std::size_t found = 0;
    for (const Family* family : kAll) found += family->order == order ? 1 : 0;
    if (found != 1) return false;
  }
  return true;
}
consteval bool names_are_unique() {
  for (std::size_t i = 0; i < std::size(kAll); ++i)
    for (std::size_t j = i + 1; j < std::size(kAll); ++j)
      if (kAll[i]->name == kAll[j]->name) return false;
  return true;
}
}  // namespace detail
static_assert(detail::orders_are_0_to_n(),
              "every family's order is unique, and together they are 0..N-1: a new family takes "
              "the next free one (and kAll lists it)");
static_assert(detail::names_are_unique(), "two families share a name");

}  // namespace pgwd::families
