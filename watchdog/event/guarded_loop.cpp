#include "event/guarded_loop.hpp"

namespace pgwd {

std::string_view to_string(CallbackPhase phase) noexcept {
  switch (phase) {
    case CallbackPhase::timer:
      return "timer";
    case CallbackPhase::socket:
      return "socket";
    case CallbackPhase::dns:
      return "dns";
    case CallbackPhase::post:
      return "post";
    case CallbackPhase::connect_poll:
      return "connect_poll";
    case CallbackPhase::setup:
      return "setup";
    case CallbackPhase::inspect:
      return "inspect";
    case CallbackPhase::probe:
      return "probe";
  }
  return "unknown";
}

/// Lives as long as any wrapped callback that might still run: the GuardedLoop marks it dead
/// when it goes, and a callback that finds it dead does nothing.
class GuardedLoop::Scope {
 public:
  Scope(Loop& inner, Reports reports) : inner_(inner), reports_(std::move(reports)) {}

  /// Runs `callback` as one of the watchdog's callbacks.
  template <typename F>
  static void run(const std::shared_ptr<Scope>& shared, CallbackPhase phase, F&& callback) {
    // A copy on the stack: `shared` may belong to a closure that the callback destroys.
    const std::shared_ptr<Scope> scope = shared;
    if (!scope->alive_) return;
    const bool outermost = scope->depth_++ == 0;
    if (outermost) {
      scope->started_ = scope->inner_.now();
      scope->note_ = {Nanos::zero(), phase, nullptr, nullptr};
    }
    callback();  // never throws: the observer's exceptions are caught where it is called
    scope->leave(outermost);
  }

  void leave(bool outermost) {
    if (--depth_ != 0 || !outermost) return;
    if (alive_ && reports_.slow_callback) {
      const Nanos took = inner_.now() - started_;
      if (took >= reports_.slow_threshold) {
        SlowCallback slow = note_;
        slow.took = took;
        reports_.slow_callback(slow);
      }
    }
    run_deferred();
  }

  void run_deferred() {
    // Destructors run here may defer more (an orphaned Watchdog's parts): keep going until empty.
    while (!deferred_.empty()) {
      std::shared_ptr<void> object = std::move(deferred_.front());
      deferred_.pop_front();
      object.reset();
    }
  }

  void defer(std::shared_ptr<void> object) {
    if (depth_ == 0) {
      object.reset();
      return;
    }
    deferred_.push_back(std::move(object));
  }

  Loop& inner_;
  Reports reports_;
  bool alive_ = true;
  int depth_ = 0;
  MonotonicTime started_{};
  SlowCallback note_;
  std::deque<std::shared_ptr<void>> deferred_;
};

namespace {

class GuardedTimer final : public Timer {
 public:
  GuardedTimer(Loop& inner, const std::shared_ptr<GuardedLoop::Scope>& scope,
               std::function<void()> on_expiry)
      : inner_(inner), timer_(inner.make_timer([this, scope, on_expiry = std::move(on_expiry)] {
          GuardedLoop::Scope::run(scope, CallbackPhase::timer, [&] {
            if (scope->reports_.timer_lag) scope->reports_.timer_lag(inner_.now() - due_);
            on_expiry();
          });
        })) {}

  void arm(Nanos delay) override {
    due_ = inner_.now() + std::max(delay, Nanos::zero());
    timer_->arm(delay);
  }
  void disarm() override { timer_->disarm(); }
  bool armed() const override { return timer_->armed(); }

 private:
  Loop& inner_;
  MonotonicTime due_{};
  TimerPtr timer_;  // last: its callback uses the members above
};

class GuardedResolver final : public Resolver {
 public:
  GuardedResolver(std::unique_ptr<Resolver> inner, std::shared_ptr<GuardedLoop::Scope> scope)
      : inner_(std::move(inner)), scope_(std::move(scope)) {}

  std::unique_ptr<Lookup> resolve(const std::string& host, Done done) override {
    // The adapter's own lookup: only its callback needs the guard.
    return inner_->resolve(host, [scope = scope_, done = std::move(done)](Resolution resolution) {
      GuardedLoop::Scope::run(scope, CallbackPhase::dns, [&] { done(std::move(resolution)); });
    });
  }

 private:
  std::unique_ptr<Resolver> inner_;
  std::shared_ptr<GuardedLoop::Scope> scope_;
};

}  // namespace

GuardedLoop::GuardedLoop(Loop& inner, Reports reports)
    : inner_(inner), scope_(std::make_shared<Scope>(inner, std::move(reports))) {}

GuardedLoop::~GuardedLoop() {
  scope_->alive_ = false;
}

TimerPtr GuardedLoop::make_timer(std::function<void()> on_expiry) {
  return std::make_unique<GuardedTimer>(inner_, scope_, std::move(on_expiry));
}

SocketWatchPtr GuardedLoop::make_socket_watch(std::function<void(Readiness)> on_ready) {
  return inner_.make_socket_watch([scope = scope_, on_ready = std::move(on_ready)](Readiness r) {
    Scope::run(scope, CallbackPhase::socket, [&] { on_ready(r); });
  });
}

std::unique_ptr<Resolver> GuardedLoop::make_resolver(const std::vector<std::string>& nameservers) {
  return std::make_unique<GuardedResolver>(inner_.make_resolver(nameservers), scope_);
}

void GuardedLoop::post(std::function<void()> task) {
  inner_.post([scope = scope_, task = std::move(task)] {
    Scope::run(scope, CallbackPhase::post, [&] { task(); });
  });
}

void GuardedLoop::doing(CallbackPhase phase, const ConnectionRef* connection,
                        const char* detail) noexcept {
  scope_->note_.phase = phase;
  scope_->note_.connection = connection;
  scope_->note_.detail = detail;
}

bool GuardedLoop::inside_callback() const noexcept {
  return scope_->depth_ > 0;
}

void GuardedLoop::defer(std::shared_ptr<void> object) {
  scope_->defer(std::move(object));
}

}  // namespace pgwd
