#pragma once

#include "lending/loan_state.hpp"
#include "os/unique_fd.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// The loop as one lent connection's code sees it. Every callback runs holding the loan's mutex
/// and only while the loan is the loop's (watching or probing): once the lender has taken the
/// connection back, a late wake-up or timer does nothing. So the watching code needs no locking
/// of its own, and never touches a connection its owner is using.
///
/// It also watches a duplicate of the connection's socket instead of libpq's descriptor: the
/// owner may PQfinish the connection (closing libpq's descriptor) as soon as take-back returns,
/// before the loop has unregistered it, and the number would then be free for a new socket of
/// this very loop, which libevent would take for the one it still has registered. The duplicate
/// is ours, closed after the watch is gone.
///
/// Not copyable or movable: the watches and timers it hands out point at it.
class LoanLoop final : public Loop {
 public:
  LoanLoop(Loop& inner, LoanState& loan, int conn_fd, UniqueFd duplicate);
  LoanLoop(const LoanLoop&) = delete;
  LoanLoop& operator=(const LoanLoop&) = delete;

  MonotonicTime now() const override { return inner_.now(); }
  TimerPtr make_timer(std::function<void()> on_expiry) override;
  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) override;
  /// A lent connection is connected: nothing to resolve. Throws std::logic_error.
  std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) override;
  void post(std::function<void()> task) override { inner_.post(std::move(task)); }
  bool in_loop_thread() const override { return inner_.in_loop_thread(); }

  /// Runs `work` holding the loan's mutex if the loan is still the loop's; says whether it ran.
  template <typename Work>
  bool locked(Work&& work) {
    const std::lock_guard lock(loan_.mutex);
    if (!loan_.lent_to_loop()) return false;
    work();
    return true;
  }

  /// The descriptor to watch for `fd`: the duplicate for the connection's own.
  int watched_fd(int fd) const noexcept { return fd == conn_fd_ ? duplicate_.get() : fd; }

 private:
  Loop& inner_;
  LoanState& loan_;
  int conn_fd_;
  UniqueFd duplicate_;
};

}  // namespace pgwd
