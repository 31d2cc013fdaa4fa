// Connect attempts on connector threads (WatchdogOptions::connector_threads): the same outcomes
// as on the watch loop (trust, SCRAM, TLS, a wrong password, a closed port, a host list), with no
// PQconnectPoll step on the watch loop's thread (counted by the libpq guard, which sees every
// libpq call the library makes), and nothing left behind or called back when a connection is
// stopped, its target removed, or the Watchdog destroyed while its attempt runs on a connector
// thread. In the "thread" suite: CI runs it under ThreadSanitizer (and, with the rest, ASan).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "support/libpq_guard.hpp"
#include "support/poll_deadline.hpp"
#include "support/tls_certificates.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::testing::at_most_every;

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::ClusterSettings;
using pgwd::testing::connect_polls_by_thread;
using pgwd::testing::connect_polls_on;
using pgwd::testing::ShutdownMode;
using pgwd::testing::TlsCertificates;
using pgwd::testing::WatchdogFixture;
using pgwd::testing::WatchdogHarness;

namespace {

using Clock = std::chrono::steady_clock;

/// Replaces the harness's Watchdog with one that has `threads` connector threads (same
/// observer, metrics store and logger).
void use_connector_threads(WatchdogHarness& h, std::size_t threads) {
  h.watchdog.reset();
  WatchdogOptions options;
  options.observer = &h.observer;
  options.metrics = h.metrics;
  options.logger = h.logger;
  options.loop_lag_interval = 10ms;
  options.connector_threads = threads;
  h.watchdog = std::make_unique<Watchdog>(h.loop.base(), options);
}

struct ConnectorFixture : WatchdogFixture {
  explicit ConnectorFixture(ClusterSettings settings = {}, std::size_t threads = 2)
      : WatchdogFixture(std::move(settings)) {
    use_connector_threads(*this, threads);
  }

  std::string dsn(const std::string& hosts, const std::string& ports,
                  const std::string& app) const {
    return "host=" + hosts + " port=" + ports + " user=watchdog password=" + cluster.password() +
           " dbname=postgres application_name=" + app;
  }
};

/// Threads whose PQconnectPoll count grew between two snapshots, the watch loop's excepted.
std::size_t threads_that_polled_since(
    const std::unordered_map<std::thread::id, std::size_t>& before, std::thread::id watch_loop) {
  std::size_t threads = 0;
  for (const auto& [thread, count] : connect_polls_by_thread()) {
    if (thread == watch_loop) continue;
    const auto was = before.find(thread);
    if (count > (was == before.end() ? 0 : was->second)) ++threads;
  }
  return threads;
}

/// A file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

/// A TCP socket bound on 127.0.0.1. Listening: the kernel completes every handshake into the
/// backlog and nothing ever answers, so an attempt waits there (for the server's reply to its
/// first packet) until it is cancelled. Not listening: every connection is refused, and the
/// port stays ours meanwhile.
class LoopbackPort {
 public:
  explicit LoopbackPort(bool listening) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_.get() >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    if (listening) REQUIRE(::listen(fd_.get(), 256) == 0);
  }
  int port() const noexcept { return port_; }

  /// Accepts the connections waiting in the backlog, waiting up to `timeout` for `n` of them.
  void accept_until(std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (accepted_.size() < n && Clock::now() < deadline) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int client = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) accepted_.emplace_back(client);
    }
  }
  std::size_t accepted() const noexcept { return accepted_.size(); }

  /// Waits up to `timeout` until every accepted connection was closed by the client (EOF).
  bool all_closed_by_client(std::chrono::milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    std::vector<int> open;
    for (const Fd& fd : accepted_) open.push_back(fd.get());
    while (!open.empty()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return false;
      std::vector<pollfd> waiting;
      for (const int fd : open) waiting.push_back({fd, POLLIN, 0});
      if (::poll(waiting.data(), waiting.size(), static_cast<int>(left.count())) <= 0) continue;
      std::vector<int> still_open;
      for (const pollfd& p : waiting) {
        if (p.revents == 0) {
          still_open.push_back(p.fd);
          continue;
        }
        char buffer[4096];
        const auto got = ::recv(p.fd, buffer, sizeof buffer, MSG_DONTWAIT);
        const bool closed = got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        if (!closed) still_open.push_back(p.fd);  // the client's first packet: read, wait on
      }
      open = std::move(still_open);
    }
    return true;
  }

 private:
  Fd fd_;
  int port_ = 0;
  std::vector<Fd> accepted_;
};

std::size_t events_of(const pgwd::testing::RecordingObserver& o) {
  return o.healthy.size() + o.down.size() + o.attempts.size() + o.connect_failures.size();
}

struct TrustAndScramFixture : ConnectorFixture {
  TrustAndScramFixture()
      : ConnectorFixture(ClusterSettings{.hba_lines = {"host all trusted 127.0.0.1/32 trust"}}) {
    cluster.execute("CREATE ROLE trusted LOGIN");
  }
};

}  // namespace

TEST_SUITE_BEGIN("thread");

TEST_CASE_FIXTURE(TrustAndScramFixture,
                  "connector threads: trust and scram-sha-256 connect on the connector threads, "
                  "none on the watch loop, and the connections handed over are watched") {
  const std::thread::id watch_loop = std::this_thread::get_id();
  const std::size_t loop_polls = connect_polls_on(watch_loop);
  const auto before = connect_polls_by_thread();

  watchdog->add_target(target("scram", 10));
  TargetOptions trust = target("trust", 10);
  trust.conninfo = "host=127.0.0.1 port=" + std::to_string(cluster.port()) +
                   " user=trusted dbname=postgres application_name=trust";
  watchdog->add_target(trust);
  REQUIRE(
      loop.run_until([&] { return all_healthy("scram", 10) && all_healthy("trust", 10); }, 60s));
  CHECK(observer.connect_failures.empty());
  CHECK(cluster.backend_pids("scram").size() == 10);
  CHECK(cluster.backend_pids("trust").size() == 10);

  CHECK(connect_polls_on(watch_loop) == loop_polls);
  // Attempts go to the threads in turn: 20 attempts reach both.
  CHECK(threads_that_polled_since(before, watch_loop) == 2);

  // The connections now belong to the watch loop: a terminated backend is seen there and
  // reconnected (on a connector thread again).
  CHECK(cluster.terminate_backends("scram") == 10);
  REQUIRE(loop.run_until([&] { return observer.healthy.size() >= 30 && all_healthy("scram", 10); },
                         60s));
  CHECK(observer.down.size() == 10);
  for (const auto& d : observer.down) {
    CHECK(d.event.connection.target == "scram");
    CHECK(d.event.cause == Cause::server_shutdown);
  }
  CHECK(connect_polls_on(watch_loop) == loop_polls);
  CHECK(metric("pgwatchdog_up", {{"target", "scram"}}) == 1);
}

TEST_CASE_FIXTURE(WatchdogFixture,
                  "connector threads: with connector_threads = 0 (the default) every "
                  "PQconnectPoll step runs on the watch loop") {
  const std::thread::id watch_loop = std::this_thread::get_id();
  const std::size_t loop_polls = connect_polls_on(watch_loop);
  const auto before = connect_polls_by_thread();
  watchdog->add_target(target("on_loop", 5));
  REQUIRE(loop.run_until([&] { return all_healthy("on_loop", 5); }, 30s));
  // TCP, startup and the SCRAM round trips: several steps per connection.
  CHECK(connect_polls_on(watch_loop) >= loop_polls + 5 * 3);
  CHECK(threads_that_polled_since(before, watch_loop) == 0);
}

TEST_CASE_FIXTURE(ConnectorFixture,
                  "connector threads: a wrong password fails with auth_failed (28P01), and the "
                  "password appears in no event and no log line") {
  const std::string wrong = "not-the-password-4f1c9a";
  TargetOptions o = target("wrong", 1);
  o.conninfo = cluster.conninfo_with_password("wrong", wrong);
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return !observer.connect_failures.empty(); }, 30s));
  const auto& failure = observer.connect_failures.front().event;
  CHECK(failure.cause == Cause::auth_failed);
  CHECK(failure.sqlstate == "28P01");
  CHECK(failure.message.find("password authentication failed") != std::string::npos);
  CHECK(failure.message.find(wrong) == std::string::npos);
  CHECK(failure.message.find(cluster.password()) == std::string::npos);
  CHECK(log_text->str().find(wrong) == std::string::npos);
  CHECK(log_text->str().find("password authentication failed") != std::string::npos);
  CHECK(metric("pgwatchdog_connect_failures_total",
               {{"target", "wrong"}, {"cause", "auth_failed"}}) >= 1);
  CHECK(metric("pgwatchdog_up", {{"target", "wrong"}}) == 0);
}

TEST_CASE_FIXTURE(ConnectorFixture,
                  "connector threads: a port nobody listens on fails with connect_failed "
                  "(connection refused)") {
  LoopbackPort closed(/*listening=*/false);
  TargetOptions o = target("refused", 2);
  o.conninfo = dsn("127.0.0.1", std::to_string(closed.port()), "refused");
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return observer.connect_failures.size() >= 2; }, 30s));
  for (const auto& f : observer.connect_failures) {
    CHECK(f.event.cause == Cause::connect_failed);
    CHECK(f.event.message.find("Connection refused") != std::string::npos);
    CHECK(f.event.message.find(cluster.password()) == std::string::npos);
  }
}

TEST_CASE_FIXTURE(ConnectorFixture,
                  "connector threads: a host list walks past a refusing and a silent host (its "
                  "attempt cancelled at its deadline) to the live one") {
  LoopbackPort refusing(/*listening=*/false);
  LoopbackPort silent(/*listening=*/true);
  TargetOptions o = target("multi", 3);
  o.conninfo = dsn("127.0.0.1,127.0.0.1,127.0.0.1",
                   std::to_string(refusing.port()) + "," + std::to_string(silent.port()) + "," +
                       std::to_string(cluster.port()),
                   "multi");
  o.connect_timeout = 1s;  // per host
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("multi", 3); }, 30s));
  const std::string live = "127.0.0.1:" + std::to_string(cluster.port());
  for (const auto& h : observer.healthy) CHECK(h.event.server.host == live);
  // The refusing and the silent host never end a walk: a failure is reported only when every
  // host failed. The live one has the same 1 s deadline, which its fork and SCRAM outlasted once
  // under ThreadSanitizer on a loaded machine: a walk that failed so had still reached it, and
  // its message says so. Nothing else may fail.
  for (const auto& f : observer.connect_failures) {
    INFO(f.event.message);
    CHECK(f.event.cause == Cause::connect_timeout);
    CHECK(f.event.message.find(live + ": no connection within") != std::string::npos);
  }
  if (!observer.connect_failures.empty())
    MESSAGE(observer.connect_failures.size(),
            " walk(s) reached the live host and ran out of its deadline there (a loaded machine)");
  // The silent host's attempts really reached it, and their cancellation closed them.
  silent.accept_until(3, 10s);
  CHECK(silent.accepted() == 3);
  CHECK(silent.all_closed_by_client(10s));
}

TEST_CASE_FIXTURE(ConnectorFixture,
                  "connector threads: remove_target while every attempt waits on a connector "
                  "thread - closed there, nothing reported afterwards") {
  LoopbackPort silent(/*listening=*/true);
  TargetOptions o = target("stuck", 20);
  o.conninfo = dsn("127.0.0.1", std::to_string(silent.port()), "stuck");
  o.connect_timeout = 60s;
  watchdog->add_target(target("alive", 2));
  REQUIRE(loop.run_until([&] { return all_healthy("alive", 2); }, 30s));
  watchdog->add_target(o);
  // max_concurrent_connects (16) attempts in flight, the other 4 waiting for a slot.
  REQUIRE(
      loop.run_until([&] { return count_in("stuck", ConnectionState::connecting) == 16; }, 30s));
  silent.accept_until(16, 10s);
  REQUIRE(silent.accepted() == 16);  // libpq connected on the connector threads and waits there

  const std::size_t events_before = events_of(observer);
  REQUIRE(watchdog->remove_target("stuck"));
  CHECK(silent.all_closed_by_client(10s));
  loop.run_for(300ms);
  CHECK(events_of(observer) == events_before);
  // The slots were given back: the other target still reconnects.
  CHECK(cluster.terminate_backends("alive") == 2);
  REQUIRE(
      loop.run_until([&] { return observer.healthy.size() >= 4 && all_healthy("alive", 2); }, 30s));
}

TEST_CASE_FIXTURE(ConnectorFixture,
                  "connector threads: destroying the Watchdog while attempts wait on connector "
                  "threads returns at once and closes them") {
  LoopbackPort silent(/*listening=*/true);
  TargetOptions o = target("stuck", 8);
  o.conninfo = dsn("127.0.0.1", std::to_string(silent.port()), "stuck");
  o.connect_timeout = 120s;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return count_in("stuck", ConnectionState::connecting) == 8; }, 30s));
  silent.accept_until(8, 10s);
  REQUIRE(silent.accepted() == 8);
  const auto start = Clock::now();
  watchdog.reset();
  const auto took = Clock::now() - start;
  MESSAGE("~Watchdog with 8 attempts in flight took ",
          std::chrono::duration_cast<std::chrono::microseconds>(took).count(), " us");
  CHECK(took < 10s);  // far from the 120 s deadline it would otherwise wait for
  CHECK(silent.all_closed_by_client(10s));
}

TEST_CASE_FIXTURE(ConnectorFixture,
                  "connector threads: remove_target in the middle of a SCRAM connect storm "
                  "leaves no connection behind") {
  watchdog->add_target(target("storm", 60));
  REQUIRE(loop.run_until([&] { return count_in("storm", ConnectionState::healthy) >= 5; }, 30s));
  REQUIRE(count_in("storm", ConnectionState::healthy) < 60);
  const std::size_t events_before = events_of(observer);
  REQUIRE(watchdog->remove_target("storm"));
  REQUIRE(loop.run_until(at_most_every(50ms, [&] { return cluster.backend_pids("storm").empty(); }),
                         30s));
  loop.run_for(200ms);
  CHECK(events_of(observer) == events_before);
  CHECK(cluster.backend_pids("storm").empty());
}

namespace {

// The certificates first (the cluster starts with them), outliving the cluster.
struct CertificatesFirst {
  TlsCertificates certs;
};

struct ConnectorTlsFixture : CertificatesFirst, pgwd::testing::ClusterHolder, WatchdogHarness {
  static ClusterSettings with_tls(const TlsCertificates& made) {
    ClusterSettings settings;
    for (std::string& line : made.server_config()) settings.extra_config.push_back(line);
    return settings;
  }
  ConnectorTlsFixture() : ClusterHolder(with_tls(certs)) { use_connector_threads(*this, 2); }
};

}  // namespace

TEST_CASE_FIXTURE(ConnectorTlsFixture,
                  "connector threads: sslmode=require - the TLS handshake on a connector thread, "
                  "the TLS connection then watched on the watch loop") {
  const std::thread::id watch_loop = std::this_thread::get_id();
  const std::size_t loop_polls = connect_polls_on(watch_loop);
  TargetOptions o;
  o.name = "tls";
  o.conninfo = cluster.conninfo("tls") + " sslmode=require";
  o.connections = 4;
  o.backoff_initial = 50ms;
  o.backoff_max = 400ms;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("tls", 4); }, 30s));
  CHECK(cluster.query_value("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                            "WHERE application_name = 'tls' AND ssl") == "4");
  CHECK(connect_polls_on(watch_loop) == loop_polls);
  CHECK(cluster.terminate_backends("tls") == 4);
  REQUIRE(
      loop.run_until([&] { return observer.healthy.size() >= 8 && all_healthy("tls", 4); }, 30s));
  for (const auto& d : observer.down) CHECK(d.event.cause == Cause::server_shutdown);
}

namespace {

struct StormFixture : ConnectorFixture {
  StormFixture()
      : ConnectorFixture(
            ClusterSettings{.extra_config = {"max_connections = 400", "shared_buffers = 64MB"}}) {}
};

}  // namespace

// The storm, with the proof asked of connector threads made without a clock: during the whole
// storm (the first connects, the restart, every reconnect) not one PQconnectPoll step, where
// libpq computes SCRAM, ran on the watch loop's thread, and both connector threads did them.
TEST_CASE_FIXTURE(StormFixture,
                  "connector threads: storm: 300 scram-sha-256 connections through pg_ctl restart "
                  "-m fast - all back, no connect step on the watch loop, both threads used") {
  constexpr std::size_t n = 300;
  const std::thread::id watch_loop = std::this_thread::get_id();
  const std::size_t loop_polls = connect_polls_on(watch_loop);
  TargetOptions o = target("storm", static_cast<int>(n));
  o.backoff_max = 2s;
  watchdog->add_target(o);
  REQUIRE(loop.run_until([&] { return all_healthy("storm", n); }, 120s));

  const auto before = connect_polls_by_thread();
  std::atomic<bool> restarted{false};
  std::thread restarter([&] {
    cluster.restart(ShutdownMode::fast);
    restarted = true;
  });
  const bool back = loop.run_until(
      [&] { return restarted && observer.healthy.size() >= 2 * n && all_healthy("storm", n); },
      120s);
  restarter.join();
  REQUIRE(back);
  CHECK(observer.down.size() == n);
  CHECK(metric("pgwatchdog_reconnects_total", {{"target", "storm"}, {"result", "success"}}) == n);
  CHECK(connect_polls_on(watch_loop) == loop_polls);
  CHECK(threads_that_polled_since(before, watch_loop) == 2);
}

TEST_CASE("connector threads: more than kMaxConnectorThreads is refused, naming the option") {
  pgwd::testing::TestLoop loop;
  WatchdogOptions options;
  options.connector_threads = kMaxConnectorThreads + 1;
  CHECK_THROWS_WITH_AS(Watchdog(loop.base(), options),
                       doctest::Contains("connector_threads must be at most 64"), InvalidOptions);
}

TEST_SUITE_END();

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
