#include "pgwd/watchdog_thread.hpp"

#include <event2/event.h>
#include <pthread.h>

#include <condition_variable>
#include <cstdio>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "event/libevent/event_ptr.hpp"
#include "pgwd/adapters/libevent.hpp"
#include "watchdog_internals.hpp"

namespace pgwd {

class WatchdogThread::Impl {
 public:
  explicit Impl(WatchdogOptions options) : metrics_(std::move(options.metrics)) {
    if (!metrics_) metrics_ = make_series_store();
    options.metrics = metrics_;
    std::promise<void> started;
    std::future<void> running = started.get_future();
    thread_ = std::thread([this, options = std::move(options), &started]() mutable {
      run(std::move(options), started);
    });
    try {
      running.get();  // the loop runs, or the Watchdog could not be made
    } catch (...) {
      thread_.join();
      throw;
    }
  }

  ~Impl() {
    if (loop_->in_loop_thread()) {
      std::fputs(
          "pgwd::WatchdogThread destroyed on its own thread (inside an observer callback): a "
          "thread cannot join itself\n",
          stderr);
      std::terminate();
    }
    loop_->post([this] {
      watchdog_.reset();  // closes every connection, here on the watchdog's thread
      event_base_loopbreak(base_);
    });
    thread_.join();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  /// Runs `work` on the watchdog's thread and returns its result (or rethrows what it threw):
  /// inline when already there, else posted and waited for.
  template <typename F>
  auto call(F work) const -> decltype(work(std::declval<Watchdog&>())) {
    if (loop_->in_loop_thread()) return work(*watchdog_);
    using Result = decltype(work(*watchdog_));
    using Value = std::conditional_t<std::is_void_v<Result>, std::monostate, Result>;
    // The result, or what the work threw, crosses back under the slot's mutex and the caller
    // moves it out: the exception is never released on the watchdog's thread. (With a
    // packaged_task the watchdog's thread could drop the last reference to an exception the
    // caller had just read; libstdc++'s own atomic count orders that, but ThreadSanitizer
    // cannot see it and reported a race.)
    struct Slot {
      std::mutex mutex;
      std::condition_variable changed;
      bool done = false;
      std::optional<Value> value;
      std::exception_ptr error;
    };
    auto slot = std::make_shared<Slot>();
    loop_->post([this, slot, work = std::move(work)]() mutable {
      std::optional<Value> value;
      std::exception_ptr error;
      try {
        if constexpr (std::is_void_v<Result>) {
          work(*watchdog_);
          value.emplace();
        } else {
          value.emplace(work(*watchdog_));
        }
      } catch (...) {
        error = std::current_exception();
      }
      const std::lock_guard lock(slot->mutex);
      slot->value = std::move(value);
      slot->error = std::move(error);
      slot->done = true;
      slot->changed.notify_one();
    });
    std::unique_lock lock(slot->mutex);
    slot->changed.wait(lock, [&] { return slot->done; });
    const std::exception_ptr error = std::exchange(slot->error, nullptr);
    std::optional<Value> value = std::move(slot->value);
    lock.unlock();
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<Result>) return std::move(*value);
  }

  bool in_loop_thread() const { return loop_->in_loop_thread(); }
  const std::shared_ptr<SeriesStore>& metrics() const noexcept { return metrics_; }

 private:

  // The thread's whole life: everything of the loop is made, used and freed here.
  void run(WatchdogOptions options, std::promise<void>& started) {
    // Named as the connector threads are: `top -H`, `perf` and a host's own tools tell the
    // watch loop from the host's threads.
    pthread_setname_np(pthread_self(), "pgwd-watch");
    EventBasePtr base;
    std::unique_ptr<LibeventLoop> loop;
    try {
      base.reset(event_base_new());
      if (!base) throw std::runtime_error("WatchdogThread: cannot create the event loop");
      loop = std::make_unique<LibeventLoop>(base.get());
      watchdog_ = std::make_unique<Watchdog>(*loop, std::move(options));
    } catch (...) {
      watchdog_.reset();
      started.set_exception(std::current_exception());
      return;
    }
    base_ = base.get();
    loop_ = loop.get();
    // Runs the moment the loop does: the constructor returns only then.
    loop_->post([&started] { started.set_value(); });
    event_base_dispatch(base_);
    // Tasks still queued (none, once the destructor's stop ran) go with the adapter.
    loop.reset();
  }

  std::shared_ptr<SeriesStore> metrics_;
  std::thread thread_;
  event_base* base_ = nullptr;
  LibeventLoop* loop_ = nullptr;
  std::unique_ptr<Watchdog> watchdog_;  // made, used and destroyed on the thread

 public:
  /// Set before the constructor returns and reset only by the destructor, so any thread may
  /// reach the Watchdog's thread-safe part (lending) through it meanwhile.
  Watchdog& watchdog() noexcept { return *watchdog_; }
};

WatchdogThread::WatchdogThread(WatchdogOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
WatchdogThread::~WatchdogThread() = default;

void WatchdogThread::add_target(TargetOptions options) {
  impl_->call(
      [options = std::move(options)](Watchdog& w) mutable { w.add_target(std::move(options)); });
}

bool WatchdogThread::remove_target(std::string_view name) {
  return impl_->call([name = std::string(name)](Watchdog& w) { return w.remove_target(name); });
}

std::vector<std::string> WatchdogThread::target_names() const {
  return impl_->call([](Watchdog& w) { return w.target_names(); });
}

std::vector<ConnectionState> WatchdogThread::connection_states(std::string_view target) const {
  return impl_->call(
      [target = std::string(target)](Watchdog& w) { return w.connection_states(target); });
}

std::map<std::string, std::vector<ConnectionState>> WatchdogThread::snapshot() const {
  return impl_->call([](Watchdog& w) {
    std::map<std::string, std::vector<ConnectionState>> states;
    for (const std::string& name : w.target_names()) states[name] = w.connection_states(name);
    return states;
  });
}

Loan WatchdogThread::lend(PGconn* connection, LendOptions options) {
  return impl_->watchdog().lend(connection, std::move(options));
}

const std::shared_ptr<SeriesStore>& WatchdogThread::metrics() const noexcept {
  return impl_->metrics();
}

Watchdog& WatchdogInternals::watchdog(WatchdogThread& thread) noexcept {
  return thread.impl_->watchdog();
}

bool WatchdogThread::in_watchdog_thread() const {
  return impl_->in_loop_thread();
}

}  // namespace pgwd
