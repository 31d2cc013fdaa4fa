#pragma once

/// \file
/// `pgwd::AsioLoop`: the watchdog's `Loop` (pgwd/loop.hpp) over an `io_context` the host owns and
/// runs. Header-only, so that it is compiled against the host's own asio:
///
///  - standalone asio (Debian `libasio-dev`, 1.22) by default: `#include <asio.hpp>` world;
///  - Boost.Asio when the host defines `PGWD_ASIO_USE_BOOST` before including this header.
///    The class then lives in another inline namespace, so two translation units built with
///    different flavours do not break the one-definition rule.
///
/// Usage (see examples/embed_on_asio.cpp):
///
///     asio::io_context io;
///     pgwd::AsioLoop loop(io);              // outlives the Watchdog
///     pgwd::Watchdog watchdog(loop, options);
///     io.run();
///
/// Lifetimes and threads: the io_context must outlive the AsioLoop, and the AsioLoop every
/// object it made (timers, watches, resolvers, lookups) and the Watchdog. All of them are made,
/// used and destroyed on the thread that runs the io_context; only `post` and `in_loop_thread`
/// may be called from any thread. Run the io_context on one thread (the watchdog is not
/// thread-safe; asio would run handlers of one io_context on every thread that calls run()).
///
/// What the adapter does that asio does not do by itself:
///
///  - Level-triggered readiness. asio's epoll reactor registers every descriptor once with
///    EPOLLET (asio 1.22 and Boost.Asio 1.18, `detail/impl/epoll_reactor.ipp`,
///    `register_descriptor`: `EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLPRI | EPOLLET`), and an edge
///    that arrives while no operation is queued is dropped (`descriptor_state::perform_io` only
///    completes queued operations). What makes a new wait see a condition that already holds
///    is a detail of `start_op`: `async_wait` passes allow_speculative = false, and that path
///    re-arms the descriptor with EPOLL_CTL_MOD, which makes the kernel re-evaluate readiness
///    (checked with strace here: one EPOLL_CTL_MOD per async_wait). asio documents none of it,
///    its io_uring backend works differently, and a completed wait does not say what the socket
///    is (readable, writable, in error). So the adapter does not rely on it: after each callback
///    (and when a watch starts) it asks the kernel with a zero-timeout poll(2); if the
///    condition still holds it reports again from the loop (asio::post, one report per handler,
///    so other handlers and the reactor run in between), else it waits again. The poll also
///    gives the Readiness reported. poll and the new wait run in one handler, before the
///    reactor runs again, so no edge between them is lost.
///  - fd ownership. libpq owns its socket. The stream_descriptor is `release()`d, never closed:
///    release() removes the epoll registration (EPOLL_CTL_DEL, harmless on a socket libpq has
///    already closed) and cancels the pending waits; the descriptor's destructor then has
///    nothing to close. Each `watch()` releases the old registration and registers afresh, so a
///    socket libpq closed and whose number it reused gets a registration of its own.
///  - Callbacks that destroy their own object. Every timer, watch and lookup keeps its state in
///    a shared block that its handlers reach through a weak_ptr plus a generation number: a
///    handler that asio already queued for a cancelled wait (it still runs, possibly with
///    success) finds a newer generation, or no block at all, and does nothing.
///  - Name resolution. `ip::tcp::resolver::async_resolve` runs getaddrinfo on asio's private
///    resolver thread (one per io_context), so /etc/hosts and nsswitch are honoured and the loop
///    never blocks; one resolver object per lookup, so cancelling one cancels only it.
///
/// Limits:
///  - `WatchdogOptions::nameservers` cannot be honoured (getaddrinfo only reads
///    /etc/resolv.conf): make_resolver throws std::invalid_argument when it is not empty.
///  - Lookups run one at a time on asio's resolver thread: a slow DNS server delays the lookups
///    queued behind it, and a cancelled lookup that getaddrinfo has started runs to its end
///    there (its result is dropped). Destroying the io_context waits for that thread.
///  - A watch whose socket libpq has closed must be stopped (or re-pointed) before another
///    socket that this io_context watches can get the same number: release() deletes the
///    epoll registration by number. The watchdog stops a watch right after libpq closes it.
///  - Linux/POSIX only (posix::stream_descriptor, poll).

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pgwd/loop.hpp"

#if defined(PGWD_ASIO_USE_BOOST)
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#define PGWD_ASIO_FLAVOUR asio_boost
#else
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#define PGWD_ASIO_FLAVOUR asio_standalone
#endif

namespace pgwd {
inline namespace PGWD_ASIO_FLAVOUR {

namespace asio_detail {

#if defined(PGWD_ASIO_USE_BOOST)
namespace net = ::boost::asio;
using error_code = ::boost::system::error_code;
#else
namespace net = ::asio;
using error_code = ::asio::error_code;
#endif

inline bool wants_read(Interest interest) noexcept {
  return (static_cast<std::uint8_t>(interest) & static_cast<std::uint8_t>(Interest::read)) != 0;
}
inline bool wants_write(Interest interest) noexcept {
  return (static_cast<std::uint8_t>(interest) & static_cast<std::uint8_t>(Interest::write)) != 0;
}

/// What the kernel says about `fd` right now (zero-timeout poll), for `interest`. An error,
/// hang-up or invalid descriptor is readable and writable: the reader finds out what happened.
inline Readiness poll_readiness(int fd, Interest interest) noexcept {
  pollfd request{};
  request.fd = fd;
  request.events = static_cast<short>((wants_read(interest) ? POLLIN : 0) |
                                      (wants_write(interest) ? POLLOUT : 0));
  int n = 0;
  do {
    n = ::poll(&request, 1, 0);
  } while (n < 0 && errno == EINTR);
  Readiness r;
  if (n < 0 || (request.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
    r.readable = r.writable = true;
    return r;
  }
  r.readable = wants_read(interest) && (request.revents & POLLIN) != 0;
  r.writable = wants_write(interest) && (request.revents & POLLOUT) != 0;
  return r;
}

/// A timer's state, shared with the handlers asio holds (see the file comment).
struct TimerState {
  TimerState(net::io_context& context, std::function<void()> callback)
      : timer(context), on_expiry(std::move(callback)) {}

  net::steady_timer timer;
  std::function<void()> on_expiry;
  std::chrono::steady_clock::time_point deadline{};
  std::uint64_t generation = 0;
  bool armed = false;
};

class AsioTimer final : public Timer {
 public:
  AsioTimer(net::io_context& io, std::function<void()> on_expiry)
      : state_(std::make_shared<TimerState>(io, std::move(on_expiry))) {}
  ~AsioTimer() override { disarm(); }
  AsioTimer(const AsioTimer&) = delete;
  AsioTimer& operator=(const AsioTimer&) = delete;

  void arm(Nanos delay) override {
    if (delay < Nanos::zero()) delay = Nanos::zero();
    TimerState& s = *state_;
    ++s.generation;
    s.armed = true;
    s.deadline = std::chrono::steady_clock::now() + delay;
    wait(state_, s.generation);
  }

  void disarm() override {
    TimerState& s = *state_;
    ++s.generation;  // a handler already queued with success must not fire
    s.armed = false;
    s.timer.cancel();
  }

  bool armed() const override { return state_->armed; }

 private:
  // Also used to wait again if asio woke us before the deadline: never fire early.
  static void wait(const std::shared_ptr<TimerState>& state, std::uint64_t generation) {
    state->timer.expires_at(state->deadline);  // cancels a pending wait: its handler is stale
    state->timer.async_wait([weak = std::weak_ptr<TimerState>(state), generation](error_code) {
      const std::shared_ptr<TimerState> s = weak.lock();  // alive while the callback runs
      if (!s || !s->armed || s->generation != generation) return;
      if (std::chrono::steady_clock::now() < s->deadline) return wait(s, generation);
      s->armed = false;  // one-shot; the callback may re-arm, disarm or destroy the timer
      s->on_expiry();
    });
  }

  std::shared_ptr<TimerState> state_;
};

/// A socket watch's state, shared with the handlers asio holds (see the file comment).
struct WatchState : std::enable_shared_from_this<WatchState> {
  WatchState(net::io_context& context, std::function<void(Readiness)> callback)
      : io(context), descriptor(context), on_ready(std::move(callback)) {}
  /// Never lets the descriptor close libpq's socket.
  ~WatchState() { detach(); }
  WatchState(const WatchState&) = delete;
  WatchState& operator=(const WatchState&) = delete;

  void watch(int new_fd, Interest new_interest) {
    detach();
    fd = new_fd;
    interest = new_interest;
    watching = true;
    error_code ec;
    descriptor.assign(fd, ec);
    // Not registrable (a closed or bad fd): report it as an error from the loop, level-triggered
    // like any other condition, until the watchdog stops the watch.
    unregistrable = static_cast<bool>(ec);
    check_again();
  }

  void stop() { detach(); }

  void activate_read() {
    if (!watching) return;
    activated = true;
    post_report();
  }

 private:
  /// Forgets the socket: removes asio's registration without closing the fd; every handler
  /// still queued for it finds a newer generation.
  void detach() {
    ++generation;
    watching = false;
    activated = false;
    unregistrable = false;
    read_wait_queued = write_wait_queued = report_posted = false;
    if (descriptor.is_open()) descriptor.release();
  }

  Readiness readiness() const {
    if (unregistrable) return Readiness{true, true};
    Readiness r = poll_readiness(fd, interest);
    if (activated) r.readable = true;
    return r;
  }

  /// While the interest stands: report from the loop if the condition holds, else wait for it.
  void check_again() {
    const Readiness r = readiness();
    if (r.readable || r.writable)
      post_report();
    else
      start_waits();
  }

  void post_report() {
    if (report_posted) return;
    report_posted = true;
    net::post(io, [weak = weak_from_this(), generation = generation] {
      if (const auto s = weak.lock(); s && s->generation == generation) {
        s->report_posted = false;
        s->deliver();
      }
    });
  }

  void start_waits() {
    if (unregistrable) return;
    if (wants_read(interest) && !read_wait_queued)
      wait_for(net::posix::descriptor_base::wait_read, &WatchState::read_wait_queued);
    if (wants_write(interest) && !write_wait_queued)
      wait_for(net::posix::descriptor_base::wait_write, &WatchState::write_wait_queued);
  }

  void wait_for(net::posix::descriptor_base::wait_type what, bool WatchState::*queued) {
    this->*queued = true;
    descriptor.async_wait(
        what, [weak = weak_from_this(), generation = generation, queued](const error_code& ec) {
          const std::shared_ptr<WatchState> s = weak.lock();
          if (!s || s->generation != generation) return;
          (*s).*queued = false;
          if (ec == net::error::operation_aborted) return;
          s->deliver();  // other errors (bad descriptor...): poll tells what the socket is
        });
  }

  void deliver() {
    const Readiness r = readiness();
    if (!r.readable && !r.writable) return start_waits();  // spurious: wait again
    activated = false;
    const std::uint64_t delivered = generation;
    const std::shared_ptr<WatchState> keep_alive = shared_from_this();  // in case it is destroyed
    on_ready(r);
    // The callback may have stopped, re-pointed or destroyed the watch: then the new generation
    // (or nobody) owns what comes next.
    if (generation == delivered && watching) check_again();
  }

 public:
  net::io_context& io;
  net::posix::stream_descriptor descriptor;  // registration only: released, never closed
  std::function<void(Readiness)> on_ready;
  int fd = -1;
  Interest interest = Interest::read;
  std::uint64_t generation = 0;
  bool watching = false;
  bool activated = false;      // activate_read() asked for a readable report
  bool unregistrable = false;  // assign() failed: reported as an error condition
  bool read_wait_queued = false;
  bool write_wait_queued = false;
  bool report_posted = false;
};

class AsioSocketWatch final : public SocketWatch {
 public:
  AsioSocketWatch(net::io_context& io, std::function<void(Readiness)> on_ready)
      : state_(std::make_shared<WatchState>(io, std::move(on_ready))) {}
  ~AsioSocketWatch() override { state_->stop(); }
  AsioSocketWatch(const AsioSocketWatch&) = delete;
  AsioSocketWatch& operator=(const AsioSocketWatch&) = delete;

  void watch(int fd, Interest interest) override { state_->watch(fd, interest); }
  void stop() override { state_->stop(); }
  void activate_read() override { state_->activate_read(); }

 private:
  std::shared_ptr<WatchState> state_;
};

/// One lookup's state: its own resolver, so that cancelling it cancels nothing else.
struct LookupState {
  LookupState(net::io_context& context, Resolver::Done callback)
      : resolver(context), done(std::move(callback)) {}
  net::ip::tcp::resolver resolver;
  Resolver::Done done;
  bool finished = false;  // completed or cancelled: `done` never runs (again)
};

class AsioLookup final : public Lookup {
 public:
  explicit AsioLookup(std::shared_ptr<LookupState> state) : state_(std::move(state)) {}
  ~AsioLookup() override { cancel(); }
  AsioLookup(const AsioLookup&) = delete;
  AsioLookup& operator=(const AsioLookup&) = delete;

  void cancel() noexcept override {
    if (state_->finished) return;
    state_->finished = true;
    // The handler may already be queued with a result; `finished` drops it.
    state_->resolver.cancel();
  }

 private:
  std::shared_ptr<LookupState> state_;
};

class AsioResolver final : public Resolver {
 public:
  explicit AsioResolver(net::io_context& io) : io_(io) {}

  std::unique_ptr<Lookup> resolve(const std::string& host, Done done) override {
    auto state = std::make_shared<LookupState>(io_, std::move(done));
    // No flags: address_configured (AI_ADDRCONFIG) would drop loopback answers on a host whose
    // only interface is lo. The handler always runs from the loop, never inside async_resolve.
    state->resolver.async_resolve(
        host, std::string(), net::ip::tcp::resolver::flags(),
        [weak = std::weak_ptr<LookupState>(state)](
            const error_code& ec, const net::ip::tcp::resolver::results_type& results) {
          const auto s = weak.lock();  // alive while the callback runs, even if it destroys it
          if (!s || s->finished) return;
          s->finished = true;
          Resolution resolution;
          if (ec) {
            resolution.error = ec.message();
          } else {
            for (const auto& entry : results) {
              std::string address = entry.endpoint().address().to_string();
              bool seen = false;
              for (const auto& a : resolution.addresses) seen = seen || a == address;
              if (!seen) resolution.addresses.push_back(std::move(address));
            }
            if (resolution.addresses.empty()) resolution.error = "no usable address";
          }
          Done callback = std::move(s->done);
          callback(std::move(resolution));
        });
    return std::make_unique<AsioLookup>(std::move(state));
  }

 private:
  net::io_context& io_;
};

/// Tasks from post(), in one queue the adapter owns: their order is the order posted, and the
/// ones still queued when the adapter goes are destroyed with it, not run later by asio.
struct PostQueue {
  std::mutex mutex;
  std::deque<std::function<void()>> tasks;  // guarded by mutex
  bool drain_posted = false;                // guarded by mutex
  bool closed = false;                      // guarded by mutex
};

}  // namespace asio_detail

/// The watchdog's Loop on a host's asio io_context. See the file comment for what it promises
/// and its limits. Not copyable or movable: the objects it makes refer to it.
class AsioLoop final : public Loop {
 public:
  using io_context = asio_detail::net::io_context;

  /// \param io the host's io_context; it must outlive this object. The adapter never runs,
  /// stops or restarts it.
  explicit AsioLoop(io_context& io)
      : io_(io), posted_(std::make_shared<asio_detail::PostQueue>()) {}

  /// Destroys, without running them, the tasks posted and not yet run. Call it on the loop's
  /// thread, after everything it made is gone.
  ~AsioLoop() override {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard<std::mutex> lock(posted_->mutex);
      posted_->closed = true;
      dropped.swap(posted_->tasks);
    }
  }

  AsioLoop(const AsioLoop&) = delete;
  AsioLoop& operator=(const AsioLoop&) = delete;
  AsioLoop(AsioLoop&&) = delete;
  AsioLoop& operator=(AsioLoop&&) = delete;

  io_context& context() const noexcept { return io_; }

  MonotonicTime now() const override { return std::chrono::steady_clock::now(); }

  TimerPtr make_timer(std::function<void()> on_expiry) override {
    return std::make_unique<asio_detail::AsioTimer>(io_, std::move(on_expiry));
  }

  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) override {
    return std::make_unique<asio_detail::AsioSocketWatch>(io_, std::move(on_ready));
  }

  /// Throws std::invalid_argument when `nameservers` is not empty: asio resolves with the
  /// system's getaddrinfo, which only asks the servers of /etc/resolv.conf.
  std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) override {
    if (!nameservers.empty())
      throw std::invalid_argument(
          "nameservers: not supported on AsioLoop (names are resolved with the system's "
          "getaddrinfo, which only asks the servers in /etc/resolv.conf); leave "
          "WatchdogOptions::nameservers empty, or use the libevent adapter");
    return std::make_unique<asio_detail::AsioResolver>(io_);
  }

  void post(std::function<void()> task) override {
    {
      std::lock_guard<std::mutex> lock(posted_->mutex);
      if (posted_->closed) return;
      posted_->tasks.push_back(std::move(task));
    }
    wake(io_, posted_);
  }

  bool in_loop_thread() const override { return io_.get_executor().running_in_this_thread(); }

 private:
  /// Makes sure one drain() is on its way (asio::post is thread-safe and interrupts a reactor
  /// that is waiting).
  static void wake(io_context& io, const std::shared_ptr<asio_detail::PostQueue>& queue) {
    {
      std::lock_guard<std::mutex> lock(queue->mutex);
      if (queue->drain_posted || queue->tasks.empty()) return;
      queue->drain_posted = true;
    }
    asio_detail::net::post(io, [&io, queue] { drain(io, queue); });
  }

  /// Runs the tasks queued so far; those they post run in a later handler, never inside.
  static void drain(io_context& io, const std::shared_ptr<asio_detail::PostQueue>& queue) {
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(queue->mutex);
      batch.swap(queue->tasks);
      queue->drain_posted = false;
    }
    while (!batch.empty()) {
      {
        std::lock_guard<std::mutex> lock(queue->mutex);
        if (queue->closed) return;  // a task destroyed the adapter: drop the rest
      }
      std::function<void()> task = std::move(batch.front());
      batch.pop_front();
      try {
        task();
      } catch (...) {
        // The exception leaves io_context::run() as asio's own handlers' do; the tasks behind
        // it keep their place and run when the host runs the loop again.
        {
          std::lock_guard<std::mutex> lock(queue->mutex);
          if (queue->closed) throw;
          queue->tasks.insert(queue->tasks.begin(), std::make_move_iterator(batch.begin()),
                              std::make_move_iterator(batch.end()));
        }
        wake(io, queue);
        throw;
      }
    }
  }

  io_context& io_;
  std::shared_ptr<asio_detail::PostQueue> posted_;
};

}  // namespace PGWD_ASIO_FLAVOUR
}  // namespace pgwd

#undef PGWD_ASIO_FLAVOUR
