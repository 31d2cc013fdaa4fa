#include "support/fake_loop.hpp"

#include <algorithm>

namespace pgwd::testing {

class FakeLoop::FakeTimer final : public Timer {
 public:
  FakeTimer(FakeLoop& owner, std::function<void()> on_expiry)
      : owner_(owner), on_expiry_(std::move(on_expiry)) {
    owner_.timers_.insert(this);
  }
  ~FakeTimer() override { owner_.timers_.erase(this); }

  void arm(Nanos delay) override {
    due_ = owner_.now_ + std::max(delay, Nanos::zero());
    order_ = ++owner_.sequence_;
    armed_ = true;
  }
  void disarm() override { armed_ = false; }
  bool armed() const override { return armed_; }

  FakeLoop& owner_;
  std::function<void()> on_expiry_;
  MonotonicTime due_{};
  std::uint64_t order_ = 0;
  bool armed_ = false;
};

class FakeLoop::FakeWatch final : public SocketWatch {
 public:
  FakeWatch(FakeLoop& owner, std::function<void(Readiness)> on_ready)
      : owner_(owner), on_ready_(std::move(on_ready)) {
    owner_.watches_.push_back(this);
  }
  ~FakeWatch() override { std::erase(owner_.watches_, this); }

  void watch(int fd, Interest interest) override {
    fd_ = fd;
    interest_ = interest;
  }
  void stop() override { fd_ = -1; }
  void activate_read() override {
    if (fd_ < 0) return;
    const int fd = fd_;
    owner_.post([this, fd, alive = std::weak_ptr<int>(alive_)] {
      if (!alive.expired() && fd_ == fd) on_ready_({true, false});
    });
  }

  FakeLoop& owner_;
  std::function<void(Readiness)> on_ready_;
  int fd_ = -1;
  Interest interest_ = Interest::read;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

class FakeLoop::FakeLookup final : public Lookup {
 public:
  FakeLookup(FakeLoop& owner, std::string host, Resolver::Done done)
      : owner_(owner), host_(std::move(host)), done_(std::move(done)) {
    owner_.lookups_.push_back(this);
  }
  ~FakeLookup() override { cancel(); }
  void cancel() noexcept override { std::erase(owner_.lookups_, this); }

  FakeLoop& owner_;
  std::string host_;
  Resolver::Done done_;
};

class FakeLoop::FakeResolver final : public Resolver {
 public:
  explicit FakeResolver(FakeLoop& owner) : owner_(owner) {}
  std::unique_ptr<Lookup> resolve(const std::string& host, Done done) override {
    return std::make_unique<FakeLookup>(owner_, host, std::move(done));
  }

 private:
  FakeLoop& owner_;
};

FakeLoop::FakeLoop() = default;
FakeLoop::~FakeLoop() = default;

TimerPtr FakeLoop::make_timer(std::function<void()> on_expiry) {
  return std::make_unique<FakeTimer>(*this, std::move(on_expiry));
}

SocketWatchPtr FakeLoop::make_socket_watch(std::function<void(Readiness)> on_ready) {
  return std::make_unique<FakeWatch>(*this, std::move(on_ready));
}

std::unique_ptr<Resolver> FakeLoop::make_resolver(const std::vector<std::string>& nameservers) {
  for (const std::string& server : nameservers)
    if (server.empty()) throw std::invalid_argument("nameservers: an entry is empty");
  return std::make_unique<FakeResolver>(*this);
}

void FakeLoop::run_posted() {
  while (!posted_.empty()) {
    auto task = std::move(posted_.front());
    posted_.pop_front();
    task();
  }
}

void FakeLoop::advance(Nanos by) {
  run_posted();
  const MonotonicTime end = now_ + by;
  for (;;) {
    FakeTimer* next = nullptr;
    for (FakeTimer* t : timers_)
      if (t->armed_ && t->due_ <= end &&
          (!next || t->due_ < next->due_ || (t->due_ == next->due_ && t->order_ < next->order_)))
        next = t;
    if (!next) break;
    now_ = std::max(now_, next->due_);
    next->armed_ = false;
    next->on_expiry_();  // may destroy *next
    run_posted();
  }
  now_ = std::max(now_, end);  // a callback that stalled past `end` leaves the clock there
}

std::size_t FakeLoop::armed_timers() const {
  return static_cast<std::size_t>(
      std::count_if(timers_.begin(), timers_.end(), [](auto* t) { return t->armed_; }));
}

int FakeLoop::make_ready(int fd, Readiness readiness) {
  // Copy: a callback may create or destroy watches.
  std::vector<FakeWatch*> ready;
  for (FakeWatch* w : watches_) {
    const auto bits = static_cast<unsigned>(w->interest_);
    const bool wants = (readiness.readable && (bits & 1U)) || (readiness.writable && (bits & 2U));
    if (w->fd_ == fd && wants) ready.push_back(w);
  }
  int ran = 0;
  for (FakeWatch* w : ready) {
    if (std::find(watches_.begin(), watches_.end(), w) == watches_.end() || w->fd_ != fd) continue;
    ++ran;
    w->on_ready_(readiness);
  }
  return ran;
}

std::size_t FakeLoop::active_watches() const {
  return static_cast<std::size_t>(
      std::count_if(watches_.begin(), watches_.end(), [](auto* w) { return w->fd_ >= 0; }));
}

std::vector<std::string> FakeLoop::pending_lookups() const {
  std::vector<std::string> hosts;
  for (const FakeLookup* l : lookups_) hosts.push_back(l->host_);
  return hosts;
}

bool FakeLoop::answer(const std::string& host, Resolution resolution) {
  const auto it = std::find_if(lookups_.begin(), lookups_.end(),
                               [&](const FakeLookup* l) { return l->host_ == host; });
  if (it == lookups_.end()) return false;
  FakeLookup* lookup = *it;
  lookups_.erase(it);  // answered: no longer pending, and cancel() is a no-op from now on
  auto done = std::move(lookup->done_);
  done(std::move(resolution));
  return true;
}

}  // namespace pgwd::testing
