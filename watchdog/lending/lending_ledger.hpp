#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "lending/loan_state.hpp"
#include "metrics/store.hpp"
#include "os/unique_fd.hpp"
#include "pgwd/lending.hpp"

namespace pgwd {

class LendingDesk;

/// The thread-safe half of lending: what lend() and take-back do on the lender's thread, and the
/// bookkeeping both sides share (which connections are lent, each target's live loans and
/// deaths, the metrics). It hands work for the loop to the LendingDesk by posting it, and
/// outlives the Watchdog for as long as a Loan holds it: after detach() nothing is posted and
/// take-backs say watchdog_stopped.
///
/// Lock order: a loan's mutex, then the ledger's.
class LendingLedger : public std::enable_shared_from_this<LendingLedger> {
 public:
  /// `post` hands a task to the watchdog's loop (thread-safe). `store` and `log` are valid
  /// until detach().
  LendingLedger(std::function<void(std::function<void()>)> post, Store& store,
                std::shared_ptr<spdlog::logger> log);
  ~LendingLedger();
  LendingLedger(const LendingLedger&) = delete;
  LendingLedger& operator=(const LendingLedger&) = delete;

  // --- any thread ---
  /// Checks the connection and the options (LendRefused), changes what watching needs
  /// (non-blocking), and posts the loan to the desk. `on_probe_end`: LoanState::on_probe_end.
  Loan lend(PGconn* conn, LendOptions options, std::function<void()> on_probe_end = {});
  /// Ends the loan (see Loan::take_back). `wait`: wait for a probe in flight rather than answer
  /// busy.
  TakenBack take_back(LoanState& loan, bool wait);
  LoanVerdict peek(const LoanState& loan) const;

  // --- the loop thread ---
  /// Tasks posted from now on go to `desk` (the Watchdog's).
  void attach(LendingDesk& desk);
  /// The Watchdog is going: nothing more is posted, the series are removed, and take-backs say
  /// watchdog_stopped from now on.
  void detach();

  /// A loan died on the loop (its mutex held): counts it, and says whether the evidence now
  /// says the target's server as a whole went away, with the callback to tell it to.
  struct ServerLostReport {
    ServerLost lost;
    std::function<void(const ServerLost&)> tell;
  };
  std::optional<ServerLostReport> record_death(LoanState& loan);

 private:
  struct Group;
  Group& group(const std::string& target);
  void forget(LoanState& loan, const TakenBack& result);
  void post(std::function<void(LendingDesk&)> task);

  std::function<void(std::function<void()>)> post_to_loop_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<std::uint64_t> next_id_{1};

  mutable std::mutex mutex_;
  // Guarded by mutex_:
  Store* store_;  ///< null after detach()
  LendingDesk* desk_ = nullptr;
  bool detached_ = false;
  std::unordered_set<const PGconn*> lent_;
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups_;
};

}  // namespace pgwd
