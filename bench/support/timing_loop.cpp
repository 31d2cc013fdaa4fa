#include "support/timing_loop.hpp"

#include <time.h>

#include <memory>
#include <utility>

namespace pgwd::bench {

std::int64_t thread_cpu_ns() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

void TimingLoop::account(std::int64_t cpu_ns) noexcept {
  callbacks_.fetch_add(1);
  total_cpu_ns_.fetch_add(cpu_ns);
  std::int64_t longest = longest_cpu_ns_.load();
  while (cpu_ns > longest && !longest_cpu_ns_.compare_exchange_weak(longest, cpu_ns)) {
  }
}

void TimingLoop::reset() noexcept {
  callbacks_.store(0);
  longest_cpu_ns_.store(0);
  total_cpu_ns_.store(0);
}

TimerPtr TimingLoop::make_timer(std::function<void()> on_expiry) {
  return inner_.make_timer(
      [this, on_expiry = std::move(on_expiry)] { measured([&] { on_expiry(); }); });
}

SocketWatchPtr TimingLoop::make_socket_watch(std::function<void(Readiness)> on_ready) {
  return inner_.make_socket_watch([this, on_ready = std::move(on_ready)](Readiness readiness) {
    measured([&] { on_ready(readiness); });
  });
}

namespace {

/// Times the resolver's completion callbacks like every other callback.
class TimingResolver final : public Resolver {
 public:
  TimingResolver(TimingLoop& loop, std::unique_ptr<Resolver> inner)
      : loop_(loop), inner_(std::move(inner)) {}
  std::unique_ptr<Lookup> resolve(const std::string& host, Done done) override {
    return inner_->resolve(host, [this, done = std::move(done)](Resolution resolution) {
      loop_.measured([&] { done(std::move(resolution)); });
    });
  }

 private:
  TimingLoop& loop_;
  std::unique_ptr<Resolver> inner_;
};

}  // namespace

std::unique_ptr<Resolver> TimingLoop::make_resolver(const std::vector<std::string>& nameservers) {
  return std::make_unique<TimingResolver>(*this, inner_.make_resolver(nameservers));
}

void TimingLoop::post(std::function<void()> task) {
  inner_.post([this, task = std::move(task)] { measured([&] { task(); }); });
}

}  // namespace pgwd::bench
