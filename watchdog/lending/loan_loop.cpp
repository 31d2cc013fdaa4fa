#include "lending/loan_loop.hpp"

#include <stdexcept>

namespace pgwd {
namespace {

class LoanWatch final : public SocketWatch {
 public:
  LoanWatch(LoanLoop& loop, Loop& inner, std::function<void(Readiness)> on_ready)
      : loop_(loop), on_ready_(std::move(on_ready)) {
    inner_ = inner.make_socket_watch([this](Readiness ready) {
      // Level-triggered: once the loan is its owner's again, its socket would keep waking the
      // loop (the owner's own replies) until the desk releases it. Stop listening at once.
      if (!loop_.locked([&] { on_ready_(ready); })) inner_->stop();
    });
  }
  void watch(int fd, Interest interest) override { inner_->watch(loop_.watched_fd(fd), interest); }
  void stop() override { inner_->stop(); }
  void activate_read() override { inner_->activate_read(); }

 private:
  LoanLoop& loop_;
  std::function<void(Readiness)> on_ready_;
  SocketWatchPtr inner_;
};

}  // namespace

LoanLoop::LoanLoop(Loop& inner, LoanState& loan, int conn_fd, UniqueFd duplicate)
    : inner_(inner), loan_(loan), conn_fd_(conn_fd), duplicate_(std::move(duplicate)) {}

TimerPtr LoanLoop::make_timer(std::function<void()> on_expiry) {
  return inner_.make_timer([this, on_expiry = std::move(on_expiry)] { locked(on_expiry); });
}

SocketWatchPtr LoanLoop::make_socket_watch(std::function<void(Readiness)> on_ready) {
  return std::make_unique<LoanWatch>(*this, inner_, std::move(on_ready));
}

std::unique_ptr<Resolver> LoanLoop::make_resolver(const std::vector<std::string>&) {
  throw std::logic_error("a lent connection resolves nothing");
}

}  // namespace pgwd
