#pragma once

#include <functional>
#include <memory>
#include <string>

#include "pg/host_walk.hpp"
#include "pg/session_opener.hpp"
#include "pgwd/lending.hpp"

namespace pgwd {

class Watchdog;
class WatchdogThread;

/// What the library's own parts reach inside a Watchdog for; not part of its API.
struct WatchdogInternals {
  /// Watchdog::lend, and `on_probe_end` told (on the watchdog's thread, holding no lock, like
  /// LendOptions::on_death) each time a probe of the loan answered and the connection is idle
  /// again: the pool's waiting acquires look again then, instead of polling.
  static Loan lend(Watchdog& watchdog, PGconn* connection, LendOptions options,
                   std::function<void()> on_probe_end);
  /// Opens connections with `settings` on the watchdog's loop, through its resolver and its
  /// connector (connector threads where configured), from any thread: see OpenFunction. The
  /// watchdog must outlive every call of the function.
  static OpenFunction open_function(Watchdog& watchdog,
                                    std::shared_ptr<const LinkSettings> settings,
                                    std::string target);
  /// The Watchdog on the thread (thread-safe parts only: lend, open_function).
  static Watchdog& watchdog(WatchdogThread& thread) noexcept;
};

}  // namespace pgwd
