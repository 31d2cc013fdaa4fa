#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "event/libevent/evdns_resolver.hpp"
#include "event/libevent/event_ptr.hpp"
#include "pgwd/adapters/libevent.hpp"

namespace pgwd {
namespace {

class LibeventTimer final : public Timer {
 public:
  LibeventTimer(event_base* base, std::function<void()> on_expiry)
      : on_expiry_(std::move(on_expiry)), event_(evtimer_new(base, &LibeventTimer::expired, this)) {
    if (!event_) throw std::bad_alloc();
  }
  LibeventTimer(const LibeventTimer&) = delete;
  LibeventTimer& operator=(const LibeventTimer&) = delete;

  void arm(Nanos delay) override {
    due_ = std::chrono::steady_clock::now() + delay;
    schedule(delay);
  }
  void disarm() override { evtimer_del(event_.get()); }
  bool armed() const override { return evtimer_pending(event_.get(), nullptr) != 0; }

 private:
  void schedule(Nanos delay) {
    // libevent counts a timeout from the time it cached when this loop iteration began; work done
    // since (a SCRAM exchange takes milliseconds) would make the timer fire early. Count from now.
    event_base_update_cache_time(event_get_base(event_.get()));
    const timeval tv = to_timeval(delay);
    evtimer_add(event_.get(), &tv);
  }

  static void expired(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<LibeventTimer*>(arg);
    // Unless the host's base was made with EVENT_BASE_FLAG_PRECISE_TIMER, libevent reads
    // CLOCK_MONOTONIC_COARSE and may fire a tick (~4 ms) early. A deadline must not be early.
    const Nanos left = self->due_ - std::chrono::steady_clock::now();
    if (left > Nanos::zero()) {
      self->schedule(left);
      return;
    }
    self->on_expiry_();  // may destroy *self: nothing follows
  }

  MonotonicTime due_{};
  std::function<void()> on_expiry_;
  EventPtr event_;
};

class LibeventSocketWatch final : public SocketWatch {
 public:
  LibeventSocketWatch(event_base* base, std::function<void(Readiness)> on_ready)
      : base_(base), on_ready_(std::move(on_ready)) {}
  LibeventSocketWatch(const LibeventSocketWatch&) = delete;
  LibeventSocketWatch& operator=(const LibeventSocketWatch&) = delete;

  void watch(int fd, Interest interest) override {
    event_.reset();  // delete the old registration before the new one (see SocketWatch)
    const auto bits = static_cast<unsigned>(interest);
    const short events = static_cast<short>(EV_PERSIST | ((bits & 1U) != 0 ? EV_READ : 0) |
                                            ((bits & 2U) != 0 ? EV_WRITE : 0));
    event_.reset(event_new(base_, fd, events, &LibeventSocketWatch::ready, this));
    if (!event_) throw std::bad_alloc();
    event_add(event_.get(), nullptr);
  }
  void stop() override { event_.reset(); }
  void activate_read() override {
    if (event_) event_active(event_.get(), EV_READ, 0);
  }

 private:
  static void ready(evutil_socket_t, short events, void* self) {
    // libevent maps EPOLLERR/EPOLLHUP to EV_READ|EV_WRITE: the reader finds out what happened.
    static_cast<LibeventSocketWatch*>(self)->on_ready_(
        Readiness{(events & EV_READ) != 0, (events & EV_WRITE) != 0});  // may destroy *self
  }

  event_base* base_;
  std::function<void(Readiness)> on_ready_;
  EventPtr event_;
};

}  // namespace

/// post(): a mutex-guarded queue and an eventfd watched on the base. Other threads only lock the
/// queue and write the eventfd; the event itself is touched by the loop's thread alone, so the
/// base needs no locking of its own.
class LibeventLoop::Impl {
 public:
  explicit Impl(event_base* base) : base_(base), thread_(std::this_thread::get_id()) {
    if (!base_) throw std::invalid_argument("LibeventLoop needs an event_base");
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    wake_.reset(event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &Impl::woken, this));
    if (!wake_ || event_add(wake_.get(), nullptr) != 0) {
      ::close(wake_fd_);
      throw std::bad_alloc();
    }
  }
  ~Impl() {
    wake_.reset();
    ::close(wake_fd_);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void post(std::function<void()> task) {
    {
      const std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    const std::uint64_t one = 1;
    // EAGAIN only if the counter is saturated, which means a wake-up is pending anyway.
    [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
  }

  event_base* base_;
  std::thread::id thread_;

 private:
  static void woken(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    std::uint64_t count = 0;
    [[maybe_unused]] const auto got = ::read(fd, &count, sizeof count);
    std::deque<std::function<void()>> tasks;
    {
      const std::lock_guard lock(self->mutex_);
      tasks.swap(self->tasks_);
    }
    // Tasks posted by these tasks wait for the next wake-up: one batch per iteration, so a task
    // that keeps posting cannot starve the loop's other events.
    for (auto& task : tasks) task();
  }

  int wake_fd_ = -1;
  EventPtr wake_;
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
};

LibeventLoop::LibeventLoop(event_base* base) : impl_(std::make_unique<Impl>(base)) {}
LibeventLoop::~LibeventLoop() = default;

MonotonicTime LibeventLoop::now() const {
  return std::chrono::steady_clock::now();
}

TimerPtr LibeventLoop::make_timer(std::function<void()> on_expiry) {
  return std::make_unique<LibeventTimer>(impl_->base_, std::move(on_expiry));
}

SocketWatchPtr LibeventLoop::make_socket_watch(std::function<void(Readiness)> on_ready) {
  return std::make_unique<LibeventSocketWatch>(impl_->base_, std::move(on_ready));
}

std::unique_ptr<Resolver> LibeventLoop::make_resolver(const std::vector<std::string>& nameservers) {
  return std::make_unique<EvdnsResolver>(impl_->base_, nameservers);
}

void LibeventLoop::post(std::function<void()> task) {
  impl_->post(std::move(task));
}

bool LibeventLoop::in_loop_thread() const {
  return std::this_thread::get_id() == impl_->thread_;
}

event_base* LibeventLoop::base() const noexcept {
  return impl_->base_;
}

}  // namespace pgwd
