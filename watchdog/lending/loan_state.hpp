#pragma once

#include <libpq-fe.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "pgwd/lending.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

class LendingLedger;

/// What one loan's two sides share: the lender's thread (lend, take-back) and the watchdog's loop
/// thread (watching, probing). Whoever touches the PGconn holds `mutex`: the loop for the length
/// of each of its callbacks (LoanLoop takes it), the lender for the take-back. So the two never
/// use the connection at once, which is all libpq asks of threads.
struct LoanState {
  enum class Phase {
    watching,  ///< lent, idle: the loop watches its socket
    probing,   ///< lent, a probe in flight: not to be handed out
    dead,      ///< lent, found dead: `death` says why; the loop has let go of it
    stopped,   ///< lent, but the Watchdog is gone: nothing watches it any more
    returned,  ///< taken back: the lender's again; the loop must not touch it
  };

  // Set by lend(), read-only afterwards.
  PGconn* conn = nullptr;
  LendOptions options;
  std::uint64_t id = 0;
  PQnoticeReceiver owner_receiver = nullptr;  ///< restored at take-back
  void* owner_receiver_arg = nullptr;
  bool owner_nonblocking = false;
  std::chrono::steady_clock::time_point lent_at;
  std::shared_ptr<LendingLedger> ledger;  ///< bookkeeping shared with the watchdog
  /// The library's own lenders' hook (the pool's): told, like on_death, on the loop thread
  /// holding no lock, when a probe answered and the connection is idle again. May be empty.
  std::function<void()> on_probe_end;

  mutable std::mutex mutex;
  std::condition_variable changed;  ///< a probe ended (phase left `probing`)
  // Guarded by `mutex`:
  Phase phase = Phase::watching;
  std::optional<LoanDeath> death;
  bool activity = false;
  std::vector<LentNotification> notifications;
  int probes = 0;
  MonotonicTime probe_sent_at{};
  /// Counted among its target's live loans (LendingLedger's evidence); guarded by the ledger's
  /// mutex, not this one.
  bool counted_alive = true;

  /// True while the loop may use the connection.
  bool lent_to_loop() const noexcept {
    return phase == Phase::watching || phase == Phase::probing;
  }
};

}  // namespace pgwd
