#include "event/guarded_loop.hpp"

#include <algorithm>
#include <utility>
#include <vector>

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
    if (alive_ && (reports_.slow_callback || reports_.pass_budget > Nanos::zero())) {
      const Nanos took = inner_.now() - started_;
      spend(took);
      if (reports_.slow_callback && took >= reports_.slow_threshold) {
        SlowCallback slow = note_;
        slow.took = took;
        reports_.slow_callback(slow);
      }
    }
    run_deferred();
  }

  /// The pass budget (Reports::pass_budget): the loop's time our callbacks took since the
  /// marker last ran. The marker is a zero timer: it runs only after the loop has polled again,
  /// so a socket callback declined meanwhile (its socket still ready, level-triggered) comes
  /// back on a later pass, behind the sockets that were ready then.
  void spend(Nanos took) {
    const Nanos budget = reports_.pass_budget;
    if (budget <= Nanos::zero()) return;
    spent_ += took;
    if (spent_ >= budget / 4 && !marker_armed_) {
      if (!marker_) marker_ = inner_.make_timer([this] { on_marker(); });
      arm_marker();
    }
  }

  void arm_marker() {
    marker_->arm(Nanos::zero());
    marker_armed_ = true;
  }

  /// The loop has polled since the marker was armed: a new budget. Then the timers declined
  /// meanwhile, oldest first, for half of it; what is left waits for the next marker.
  void on_marker() {
    const std::shared_ptr<Scope> keep = self_.lock();  // a callback may destroy the GuardedLoop
    if (!keep) return;
    marker_armed_ = false;
    spent_ = Nanos::zero();
    for (Waiting* w : std::exchange(waiting_, {})) w->again();
    while (alive_ && !due_timers_.empty() && !declines(CallbackPhase::timer)) {
      const std::shared_ptr<DueTimer> due = due_timers_.front().lock();
      due_timers_.pop_front();
      if (!due || !due->queued) continue;  // destroyed, re-armed or disarmed since
      due->queued = false;
      due->expire();
    }
    if (alive_ && !due_timers_.empty() && !marker_armed_) arm_marker();
  }

  /// A watch with a readiness the socket itself will not report again (activate_read), declined
  /// while the budget was spent: made ready again when the marker runs. Made again at once, it
  /// would run again in the same pass (libevent runs what is activated meanwhile), over and over.
  class Waiting {
   public:
    virtual void again() = 0;

   protected:
    ~Waiting() = default;
  };
  void wait(Waiting* w) {
    if (std::find(waiting_.begin(), waiting_.end(), w) == waiting_.end()) waiting_.push_back(w);
  }
  void forget(Waiting* w) { std::erase(waiting_, w); }

  /// A timer's expiry declined while half the budget was spent: queued, run by the marker in the
  /// order declined, with half a budget a pass. Not re-armed in the loop: 50,000 timers due
  /// together would then all come due again, and be declined again, every pass.
  struct DueTimer {
    bool queued = false;           // false: re-armed, disarmed, or run since it was queued
    std::function<void()> expire;  // the timer's guarded callback
  };
  void queue(const std::shared_ptr<DueTimer>& due) {
    ++declined_;
    due->queued = true;
    due_timers_.push_back(due);
  }

  /// True when a callback of `phase` (socket, connect_poll or timer) should wait for a later
  /// pass: a watch's socket once the budget is spent, a connect step's or a timer's once half of
  /// it is. The marker runs after the pass's sockets (libevent runs the timers due after the
  /// sockets ready), and runs the timers declined before: so they take at most half a budget of
  /// a pass, and the sockets of the pass after always have the other half. A socket is never
  /// starved by a backlog of timers (10,000 reconnect timers due together), nor the timers by
  /// sockets. A connect step (SCRAM: ~2.5 ms) runs only while half the budget is left, so an
  /// idle connection's readiness in a reconnect storm waits at most for the steps of half a
  /// budget (and the one running), not for a whole budget of them every pass.
  bool declines(CallbackPhase phase) const noexcept {
    const Nanos budget = reports_.pass_budget;
    if (!alive_ || depth_ != 0 || budget <= Nanos::zero()) return false;
    const bool half = phase == CallbackPhase::timer || phase == CallbackPhase::connect_poll;
    return spent_ >= (half ? budget / 2 : budget);
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
  Nanos spent_{};  // since the marker last ran
  bool marker_armed_ = false;
  TimerPtr marker_;  // made on first use; destroyed by ~GuardedLoop, with the loop alive
  std::uint64_t declined_ = 0;
  std::vector<Waiting*> waiting_;  // few: only watches with an activate_read() declined
  std::deque<std::weak_ptr<DueTimer>> due_timers_;  // declined expiries, oldest first
  std::weak_ptr<Scope> self_;                       // set by GuardedLoop's constructor
};

namespace {

class GuardedTimer final : public Timer {
 public:
  GuardedTimer(Loop& inner, const std::shared_ptr<GuardedLoop::Scope>& scope,
               std::function<void()> on_expiry)
      : inner_(inner),
        scope_(scope),
        on_expiry_(std::move(on_expiry)),
        due_(std::make_shared<GuardedLoop::Scope::DueTimer>()),
        timer_(inner.make_timer([this] {
          if (scope_->declines(CallbackPhase::timer))
            scope_->queue(due_);  // the marker runs it, in the order declined
          else
            expire();
        })) {
    due_->expire = [this] { expire(); };  // only while due_ lives, which this owns
  }

  void arm(Nanos delay) override {
    due_->queued = false;  // a declined expiry is replaced, like a pending one
    due_at_ = inner_.now() + std::max(delay, Nanos::zero());
    timer_->arm(delay);
  }
  void disarm() override {
    due_->queued = false;
    timer_->disarm();
  }
  bool armed() const override { return due_->queued || timer_->armed(); }

 private:
  void expire() {
    // Copies on the stack: the callback may destroy this timer.
    const std::shared_ptr<GuardedLoop::Scope> scope = scope_;
    Loop& inner = inner_;
    const MonotonicTime due_at = due_at_;
    GuardedLoop::Scope::run(scope, CallbackPhase::timer, [&] {
      if (scope->reports_.timer_lag) scope->reports_.timer_lag(inner.now() - due_at);
      on_expiry_();
    });
  }

  Loop& inner_;
  std::shared_ptr<GuardedLoop::Scope> scope_;
  MonotonicTime due_at_{};
  std::function<void()> on_expiry_;
  std::shared_ptr<GuardedLoop::Scope::DueTimer> due_;
  TimerPtr timer_;  // last: its callback uses the members above
};

/// A watch whose callback waits for a later loop pass while the pass budget is spent. A
/// declined readiness needs nothing kept: the watch is level-triggered, so the loop reports the
/// socket again; only an activate_read() (OpenSSL holding bytes the socket no longer shows) is
/// made again, as nothing else would bring it back.
class GuardedWatch final : public SocketWatch, private GuardedLoop::Scope::Waiting {
 public:
  /// `phase`: socket (a watch) or connect_poll (a connect step), for the budget's share.
  GuardedWatch(Loop& inner, const std::shared_ptr<GuardedLoop::Scope>& scope, CallbackPhase phase,
               std::function<void(Readiness)> on_ready)
      : scope_(scope),
        watch_(inner.make_socket_watch(
            [this, scope, phase, on_ready = std::move(on_ready)](Readiness r) {
              if (scope->declines(phase)) {
                ++scope->declined_;
                if (activated_) scope->wait(this);
                return;
              }
              activated_ = false;
              GuardedLoop::Scope::run(scope, phase, [&] { on_ready(r); });
            })) {}
  ~GuardedWatch() { scope_->forget(this); }
  GuardedWatch(const GuardedWatch&) = delete;
  GuardedWatch& operator=(const GuardedWatch&) = delete;

  void watch(int fd, Interest interest) override {
    activated_ = false;
    watch_->watch(fd, interest);
  }
  void stop() override {
    activated_ = false;
    watch_->stop();
  }
  void activate_read() override {
    activated_ = true;
    watch_->activate_read();
  }

 private:
  void again() override {
    if (activated_) watch_->activate_read();
  }

  std::shared_ptr<GuardedLoop::Scope> scope_;
  bool activated_ = false;
  SocketWatchPtr watch_;  // last: its callback uses the members above
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
    : inner_(inner), scope_(std::make_shared<Scope>(inner, std::move(reports))) {
  scope_->self_ = scope_;
}

GuardedLoop::~GuardedLoop() {
  scope_->alive_ = false;
  scope_->marker_.reset();  // the inner loop outlives us, not necessarily the Scope
  scope_->due_timers_.clear();
}

TimerPtr GuardedLoop::make_timer(std::function<void()> on_expiry) {
  return std::make_unique<GuardedTimer>(inner_, scope_, std::move(on_expiry));
}

SocketWatchPtr GuardedLoop::make_socket_watch(std::function<void(Readiness)> on_ready) {
  return make_socket_watch(std::move(on_ready), SocketWork::watch);
}

SocketWatchPtr GuardedLoop::make_socket_watch(std::function<void(Readiness)> on_ready,
                                              SocketWork work) {
  const CallbackPhase phase =
      work == SocketWork::connect_step ? CallbackPhase::connect_poll : CallbackPhase::socket;
  return std::make_unique<GuardedWatch>(inner_, scope_, phase, std::move(on_ready));
}

std::uint64_t GuardedLoop::declined() const noexcept {
  return scope_->declined_;
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
