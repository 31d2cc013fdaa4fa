#pragma once

/// \file
/// pgwatchdog's entry point for hosts. A Watchdog lives on an event_base the host owns and runs;
/// it never runs, exits or frees that loop. Not thread-safe: construct it, call it and destroy it
/// on the loop's thread (DESIGN §3; a later issue adds a thread-owning runner).

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pgwd/connection_state.hpp"
#include "pgwd/export.hpp"
#include "pgwd/observer.hpp"
#include "pgwd/target_options.hpp"

struct event_base;
namespace prometheus {
class Registry;
}
namespace spdlog {
class logger;
}

namespace pgwd {

/// Bad options given to add_target: a malformed DSN, a duplicate name, a value out of range.
/// The message names the target and what is wrong, and never contains a password.
class PGWD_EXPORT InvalidTarget : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Checks options the way add_target does, without connecting. Throws InvalidTarget.
PGWD_EXPORT void validate(const TargetOptions& options);

/// The conninfo with any password replaced by `***`, for display (`--check-config`, logs).
PGWD_EXPORT std::string redact_conninfo(std::string_view conninfo);

struct WatchdogOptions {
  /// Receives every event. Not owned; must outlive the Watchdog. May be null.
  Observer* observer = nullptr;
  /// Metrics are registered here (the host exposes it); a private registry is made if null.
  std::shared_ptr<prometheus::Registry> registry;
  /// Where the watchdog logs; spdlog's default logger if null.
  std::shared_ptr<spdlog::logger> logger;
  /// Period of the timer that measures how late the loop runs (event_loop_lag_seconds).
  /// Zero turns the measurement off.
  std::chrono::milliseconds loop_lag_interval = std::chrono::milliseconds(100);
  /// DNS servers ("IP" or "IP:PORT") to ask instead of those in /etc/resolv.conf. /etc/hosts is
  /// read either way. Every connect attempt resolves afresh: nothing is cached.
  std::vector<std::string> nameservers;
  /// Connect attempts in flight at once, across all targets; the others wait their turn.
  /// libpq computes SCRAM authentication on the loop (milliseconds of CPU per attempt), so a
  /// thousand connections returning together would otherwise stall the loop for a second.
  std::size_t max_concurrent_connects = 16;
};

class PGWD_EXPORT Watchdog {
 public:
  /// \param base the host's loop; must outlive the Watchdog.
  explicit Watchdog(event_base* base, WatchdogOptions options = {});
  /// Closes every connection (no blocking call) and unregisters all events from the host's loop.
  ~Watchdog();

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  Watchdog(Watchdog&&) = delete;
  Watchdog& operator=(Watchdog&&) = delete;

  /// Opens `options.connections` connections and keeps them healthy. Returns at once; results
  /// arrive as events. Throws InvalidTarget (nothing is started) if the options are bad.
  void add_target(TargetOptions options);

  /// Closes the target's connections and removes its metric series. Safe from an observer
  /// callback. Returns false if no target has that name.
  bool remove_target(std::string_view name);

  std::vector<std::string> target_names() const;

  /// The state of each connection of a target, by index; empty if the target is unknown.
  std::vector<ConnectionState> connection_states(std::string_view target) const;

  const std::shared_ptr<prometheus::Registry>& registry() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgwd
