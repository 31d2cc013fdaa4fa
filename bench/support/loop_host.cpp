#include "support/loop_host.hpp"

#include <event2/event.h>
#include <pthread.h>
#include <unistd.h>

#include <stdexcept>

#include "pgwd/adapters/libevent.hpp"

namespace pgwd::bench {

struct LoopHost::State {
  event_base* base = nullptr;
  std::unique_ptr<LibeventLoop> adapter;
  std::unique_ptr<TimingLoop> timing;
  std::unique_ptr<Watchdog> watchdog;
};

LoopHost::LoopHost(WatchdogOptions options) : state_(std::make_unique<State>()) {
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  thread_ = std::thread([this, options = std::move(options), &started]() mutable {
    run(std::move(options), started);
  });
  try {
    ready.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

void LoopHost::run(WatchdogOptions options, std::promise<void>& started) {
  try {
    tid_ = ::gettid();
    pthread_setname_np(pthread_self(), "bench-host");  // the embedded watchdog's loop
    state_->base = event_base_new();
    if (state_->base == nullptr) throw std::runtime_error("event_base_new failed");
    state_->adapter = std::make_unique<LibeventLoop>(state_->base);
    state_->timing = std::make_unique<TimingLoop>(*state_->adapter);
    timing_ = state_->timing.get();
    state_->watchdog = std::make_unique<Watchdog>(*state_->timing, std::move(options));
  } catch (...) {
    state_->watchdog.reset();
    state_->timing.reset();
    state_->adapter.reset();
    if (state_->base != nullptr) event_base_free(state_->base);
    started.set_exception(std::current_exception());
    return;
  }
  started.set_value();
  event_base_dispatch(state_->base);
  state_->watchdog.reset();
  state_->timing.reset();
  state_->adapter.reset();
  event_base_free(state_->base);
}

void LoopHost::call(const std::function<void(Watchdog&)>& work) {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  state_->adapter->post([this, &work, &done] {
    try {
      if (!state_->watchdog) throw std::logic_error("LoopHost: the watchdog is gone");
      work(*state_->watchdog);
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  finished.get();
}

void LoopHost::destroy_watchdog() {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  state_->adapter->post([this, &done] {
    state_->watchdog.reset();
    done.set_value();
  });
  finished.get();
}

LoopHost::~LoopHost() {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  state_->adapter->post([this, &done] {
    state_->watchdog.reset();
    event_base_loopbreak(state_->base);
    done.set_value();
  });
  finished.get();
  thread_.join();
}

}  // namespace pgwd::bench
