#pragma once

#include <spdlog/logger.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "event/guarded_loop.hpp"
#include "lending/lending_ledger.hpp"
#include "lending/lent_connection.hpp"

namespace pgwd {

/// The loop's half of lending: the lent connections being watched, and the hosts' callbacks.
/// Lives on the loop thread, owned by the Watchdog; the ledger posts it the loans to take on
/// and the ones taken back.
///
/// The hosts' callbacks (on_death, on_server_lost) never run inside a lent connection's own
/// callback, which holds that loan's mutex: a death is recorded there, and told from a timer of
/// the desk's own right after, holding nothing, so that the callback may take the loan back
/// inline, lend, or destroy the Watchdog.
class LendingDesk {
 public:
  LendingDesk(GuardedLoop& loop, std::shared_ptr<LendingLedger> ledger, spdlog::logger& log);
  /// Lets go of every lent connection (their take-backs say watchdog_stopped).
  ~LendingDesk();
  LendingDesk(const LendingDesk&) = delete;
  LendingDesk& operator=(const LendingDesk&) = delete;

  /// Starts watching a loan, unless it was taken back before the loop got to it.
  void adopt(const std::shared_ptr<LoanState>& loan, UniqueFd duplicate);
  /// A take-back happened: unregisters the loan's socket and frees its watcher.
  void release(std::uint64_t id);
  /// The Watchdog is going (maybe from inside a callback): lets go of everything now.
  void shut_down();

 private:
  void died(LoanState& loan);
  void probe_ended(LoanState& loan);
  void tell_hosts();

  GuardedLoop& loop_;
  std::shared_ptr<LendingLedger> ledger_;
  spdlog::logger& log_;
  std::unordered_map<std::uint64_t, std::unique_ptr<LentConnection>> lent_;
  std::vector<std::function<void()>> to_tell_;  ///< hosts' callbacks due, in order
  TimerPtr tell_timer_;
  bool open_ = true;  ///< false once shut down
};

}  // namespace pgwd
