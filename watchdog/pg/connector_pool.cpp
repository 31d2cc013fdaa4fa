#include "pg/connector_pool.hpp"

#include <event2/event.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "event/libevent/event_ptr.hpp"
#include "pg/connect_poller.hpp"
#include "pgwd/adapters/libevent.hpp"

namespace pgwd {
namespace {

/// What the watch loop and a connector thread share about one attempt.
struct Job {
  Job(const ConnectionRef& connection, Connector::Done on_done)
      : who(connection), name(connection), done(std::move(on_done)) {}
  const ConnectionRef& who;  ///< the connection's own: read on the watch loop only
  const ConnectionRef name;  ///< a copy, never changed, for the connector thread
  std::atomic<bool> cancelled{false};
  Connector::Done done;    ///< watch loop only
  bool delivered = false;  ///< watch loop only
  /// The outcome, once the connector thread has it and until the watch loop takes it (the
  /// posted delivery, or a last look at the host's deadline, whichever comes first).
  std::mutex mutex;
  std::shared_ptr<AttemptOutcome> finished;  ///< guarded by `mutex`
};

/// On the watch loop: hands the finished outcome to `done`, once. False if there is none yet,
/// or it was delivered or cancelled. `done` is the last thing it does (it may destroy the
/// attempt, whose Job this call keeps alive).
bool deliver(const std::shared_ptr<Job>& held, ActivityNotes& notes) {
  const std::shared_ptr<Job> job = held;  // `held` may belong to the attempt `done` destroys
  if (job->cancelled.load() || job->delivered) return false;
  std::shared_ptr<AttemptOutcome> outcome;
  {
    const std::lock_guard lock(job->mutex);
    outcome = std::move(job->finished);
  }
  if (!outcome) return false;
  job->delivered = true;
  notes.doing(CallbackPhase::connect_poll, &job->who,
              "taking over a connection from a connector thread");
  const Connector::Done done = std::move(job->done);
  done(std::move(*outcome));
  return true;
}

}  // namespace

/// One connector thread: its own event_base and LibeventLoop, made, run and freed on the
/// thread; the attempts it polls, by id, touched on the thread only.
class ConnectorPool::Worker {
 public:
  Worker(Loop& watch_loop, ActivityNotes& notes) : watch_loop_(watch_loop), notes_(notes) {
    std::promise<void> started;
    std::future<void> running = started.get_future();
    thread_ = std::thread([this, &started] { run(started); });
    try {
      running.get();  // the loop runs, or it could not be made
    } catch (...) {
      thread_.join();
      throw;
    }
  }

  ~Worker() {
    // Posted after every cancellation the watch loop sent (one thread's posts keep their order).
    loop_->post([this] {
      attempts_.clear();  // PQfinish of the attempts still polling, here, without blocking
      event_base_loopbreak(base_);
    });
    thread_.join();
  }

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Thread-safe.
  void post(std::function<void()> task) { loop_->post(std::move(task)); }

  /// On the connector thread.
  void begin(std::uint64_t id, const Conninfo& conninfo, const std::shared_ptr<Job>& job) {
    if (job->cancelled.load()) return;
    auto poller = std::make_unique<ConnectPoller>(
        *loop_, nullptr, job->name,
        [this, id, job](AttemptOutcome outcome) { finished(id, job, std::move(outcome)); });
    ConnectPoller& started = *poller;
    attempts_.emplace(id, std::move(poller));
    if (auto refused = started.start(conninfo)) finished(id, job, std::move(*refused));
  }

  /// On the connector thread. Nothing to do if the attempt already finished.
  void cancel(std::uint64_t id) { attempts_.erase(id); }

 private:
  void run(std::promise<void>& started) {
    pthread_setname_np(pthread_self(), "pgwd-connector");
    EventBasePtr base;
    std::unique_ptr<LibeventLoop> loop;
    try {
      base.reset(event_base_new());
      if (!base) throw std::runtime_error("connector thread: cannot create its event loop");
      loop = std::make_unique<LibeventLoop>(base.get());
    } catch (...) {
      started.set_exception(std::current_exception());
      return;
    }
    base_ = base.get();
    loop_ = loop.get();
    loop_->post([&started] { started.set_value(); });
    event_base_dispatch(base_);
    attempts_.clear();
    loop.reset();  // tasks still queued (none once every attempt is gone) are dropped here
  }

  // Called by the attempt's poller as its last action (`job` then lives in that callback's
  // copy), or by begin() for an attempt libpq refused at once.
  void finished(std::uint64_t id, const std::shared_ptr<Job>& job, AttemptOutcome outcome) {
    attempts_.erase(id);
    if (job->cancelled.load()) return;  // the outcome's PGconn is finished here
    // The PGconn travels in the Job: whoever drops the Job last (the watch loop, or its adapter
    // dropping tasks at its end) finishes it, if it was never delivered.
    {
      const std::lock_guard lock(job->mutex);
      job->finished = std::make_shared<AttemptOutcome>(std::move(outcome));
    }
    watch_loop_.post([job, &notes = notes_] { deliver(job, notes); });
  }

  Loop& watch_loop_;
  ActivityNotes& notes_;
  std::thread thread_;
  event_base* base_ = nullptr;  // set before the constructor returns
  LibeventLoop* loop_ = nullptr;
  std::unordered_map<std::uint64_t, std::unique_ptr<ConnectPoller>> attempts_;  // thread only
};

namespace {

class PooledAttempt final : public ConnectAttempt {
 public:
  PooledAttempt(ConnectorPool::Worker& worker, std::uint64_t id, std::shared_ptr<Job> job,
                ActivityNotes& notes)
      : worker_(worker), id_(id), job_(std::move(job)), notes_(notes) {}
  PooledAttempt(const PooledAttempt&) = delete;
  PooledAttempt& operator=(const PooledAttempt&) = delete;

  ~PooledAttempt() override {
    job_->cancelled.store(true);
    job_->done = nullptr;
    if (!job_->delivered) worker_.post([&worker = worker_, id = id_] { worker.cancel(id); });
  }

  // Only an outcome already finished: an attempt still polling is the thread's to step.
  bool finish_if_ready() override { return deliver(job_, notes_); }

 private:
  ConnectorPool::Worker& worker_;
  std::uint64_t id_;
  std::shared_ptr<Job> job_;
  ActivityNotes& notes_;
};

}  // namespace

ConnectorPool::ConnectorPool(Loop& watch_loop, ActivityNotes& notes, std::size_t threads)
    : watch_loop_(watch_loop), notes_(notes) {
  if (threads == 0) throw std::invalid_argument("ConnectorPool needs at least one thread");
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i)
    workers_.push_back(std::make_unique<Worker>(watch_loop_, notes_));
}

ConnectorPool::~ConnectorPool() = default;

Connector::Started ConnectorPool::start(const Conninfo& conninfo, const ConnectionRef& who,
                                        Done done) {
  Worker& worker = *workers_[next_worker_];
  next_worker_ = (next_worker_ + 1) % workers_.size();
  const std::uint64_t id = ++next_id_;
  auto job = std::make_shared<Job>(who, std::move(done));
  worker.post([&worker, id, conninfo, job] { worker.begin(id, conninfo, job); });
  return {std::make_unique<PooledAttempt>(worker, id, std::move(job), notes_), std::nullopt};
}

}  // namespace pgwd
