// The daemon under systemd's notify protocol (Type=notify, WatchdogSec=): a datagram socket the
// test binds plays the service manager ($NOTIFY_SOCKET, $WATCHDOG_USEC), and sees what systemd
// would see, in order.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "os/unique_fd.hpp"
#include "support/daemon_fixture.hpp"
#include "support/http_client.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;
using pgwd::testing::DaemonProcess;

namespace {

std::uint64_t monotonic_usec() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
         static_cast<std::uint64_t>(now.tv_nsec) / 1'000U;
}

/// The service manager's end: an AF_UNIX datagram socket in the abstract namespace, named as
/// $NOTIFY_SOCKET names it ("@name").
class NotifySocket {
 public:
  NotifySocket() : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (fd_.get() < 0) throw std::system_error(errno, std::generic_category(), "socket");
    static std::atomic<int> counter{0};
    name_ = "pgwd-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name_.data(), name_.size());  // sun_path[0] = 0: abstract
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name_.size());
    if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0)
      throw std::system_error(errno, std::generic_category(), "bind " + name_);
  }

  /// The value of $NOTIFY_SOCKET for the daemon.
  std::string env() const { return "@" + name_; }

  /// The next datagram, or nullopt when none arrives within `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{fd_.get(), POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(std::max(left.count(), 0L)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) throw std::system_error(errno, std::generic_category(), "poll");
      if (ready == 0) return std::nullopt;
      char buffer[4096];
      const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::system_error(errno, std::generic_category(), "recv");
      return std::string(buffer, static_cast<std::size_t>(n));
    }
  }

  /// The next datagram other than a WATCHDOG=1 ping.
  std::optional<std::string> receive_state(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      std::optional<std::string> message = receive(std::max(left, 0ms));
      if (!message || *message != "WATCHDOG=1") return message;
    }
  }

 private:
  pgwd::UniqueFd fd_;
  std::string name_;
};

std::vector<std::string> daemon_args(const DaemonFixture& f) {
  return {"--config", f.config_path.string(), "--listen", f.listen(), "--log-level", "debug"};
}

}  // namespace

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: systemd sees READY, STATUS, RELOADING and READY, STOPPING, in order") {
  write_config("targets:\n" + target_yaml("db", 1));
  NotifySocket manager;
  daemon.emplace(PGWD_DAEMON_BINARY, daemon_args(*this),
                 std::map<std::string, std::string>{{"NOTIFY_SOCKET", manager.env()}});

  // READY=1 is sent after the port is bound and every target added, before the loop has run a
  // connect: no target can be up yet.
  std::optional<std::string> message = manager.receive(10s);
  INFO("daemon output:\n", daemon->output());
  REQUIRE(message == "READY=1\nSTATUS=0/1 targets up");
  CHECK(pgwd::testing::http_get("127.0.0.1", metrics_port, "/-/healthy").status == 200);
  CHECK(manager.receive(10s) == "STATUS=1/1 targets up");

  // A reload that adds a target on a port nobody listens on: RELOADING=1 with the time the
  // reload began, then READY=1 once it is applied (the new target counted, not up).
  write_config("targets:\n" + target_yaml("db", 1) +
               "  - name: closed\n    dsn: \"host=127.0.0.1 port=1 dbname=x user=y\"\n"
               "    backoff_initial: 1h\n    backoff_max: 2h\n    scout_interval: 0\n");
  const std::uint64_t before = monotonic_usec();
  daemon->send_signal(SIGHUP);
  message = manager.receive(10s);
  const std::uint64_t after = monotonic_usec();
  REQUIRE(message.has_value());
  const std::string reloading = "RELOADING=1\nMONOTONIC_USEC=";
  REQUIRE(message->starts_with(reloading));
  const std::uint64_t stamp = std::stoull(message->substr(reloading.size()));
  CHECK(stamp >= before);
  CHECK(stamp <= after);
  CHECK(manager.receive(10s) == "READY=1\nSTATUS=1/2 targets up");

  daemon->send_signal(SIGTERM);
  CHECK(manager.receive(10s) == "STOPPING=1");
  CHECK(daemon->wait_exit(10s) == 0);
  // Nothing after STOPPING=1; and no pings, as no watchdog was asked for.
  CHECK(manager.receive(0ms) == std::nullopt);
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: under systemd without --config, a SIGHUP ends in READY=1 too") {
  // SIGHUP then reloads only the web config: RELOADING=1 and READY=1 all the same, so that
  // `systemctl reload` returns.
  NotifySocket manager;
  daemon.emplace(
      PGWD_DAEMON_BINARY,
      std::vector<std::string>{"--target", "db=" + cluster.conninfo("db"), "--listen", listen()},
      std::map<std::string, std::string>{{"NOTIFY_SOCKET", manager.env()}});
  INFO("daemon output:\n", daemon->output());
  REQUIRE(manager.receive(10s) == "READY=1\nSTATUS=0/1 targets up");
  REQUIRE(manager.receive(10s) == "STATUS=1/1 targets up");
  daemon->send_signal(SIGHUP);
  const std::optional<std::string> message = manager.receive(10s);
  REQUIRE(message.has_value());
  CHECK(message->starts_with("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(manager.receive(10s) == "READY=1\nSTATUS=1/1 targets up");
  CHECK(daemon->wait_for_output("SIGHUP: started without --config", 10s));
  daemon->send_signal(SIGTERM);
  CHECK(manager.receive(10s) == "STOPPING=1");
  CHECK(daemon->wait_exit(10s) == 0);
}

// The pings come from a timer on the loop that watches the connections, not from a thread of
// their own: while that loop is blocked, none is sent. What blocks it here is what blocks it in
// production: with connector_threads: 0 the connects run on the loop, and libpq computes a SCRAM
// proof inside one PQconnectPoll call, for as many PBKDF2 iterations as the server's verifier
// says. The role `wedge` has a verifier of 6,000,000 iterations (libpq's default is 4096): at
// least 2 s of CPU for the client, after which the server refuses the (wrong) proof.
TEST_CASE_FIXTURE(DaemonFixture,
                  "daemon: systemd's watchdog pings stop while the watch loop is blocked") {
  constexpr auto kWatchdog = 200ms;         // WATCHDOG_USEC: a ping every 100 ms
  constexpr auto kBlockedAtLeast = 1000ms;  // the gap the blocked loop must leave
  cluster.execute(
      "CREATE ROLE wedge LOGIN PASSWORD 'SCRAM-SHA-256$6000000:c2FsdHNhbHRzYWx0c2FsdA==$"
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='");
  const std::string config = "connector_threads: 0\ntargets:\n" + target_yaml("db", 1);
  write_config(config);
  NotifySocket manager;
  daemon.emplace(
      PGWD_DAEMON_BINARY, daemon_args(*this),
      std::map<std::string, std::string>{
          {"NOTIFY_SOCKET", manager.env()},
          {"WATCHDOG_USEC", std::to_string(std::chrono::microseconds(kWatchdog).count())}});
  INFO("daemon output:\n", daemon->output());
  REQUIRE(manager.receive_state(10s) == "READY=1\nSTATUS=0/1 targets up");
  // The loop runs: pings come.
  int pings = 0;
  std::chrono::steady_clock::time_point last_ping;
  const auto pings_by = std::chrono::steady_clock::now() + 10s;
  while (pings < 5 && std::chrono::steady_clock::now() < pings_by) {
    const auto message = manager.receive(1s);
    if (message != "WATCHDOG=1") continue;
    ++pings;
    last_ping = std::chrono::steady_clock::now();
  }
  REQUIRE(pings == 5);

  write_config(config +
               "  - name: wedge\n    dsn: \"host=127.0.0.1 port=" + std::to_string(cluster.port()) +
               " dbname=postgres user=wedge password=wrong application_name=wedge\"\n"
               "    backoff_initial: 1h\n    backoff_max: 2h\n    scout_interval: 0\n");
  daemon->send_signal(SIGHUP);
  // Every ping's arrival, from the last one before the SIGHUP (the blocking connect may begin
  // before the next), until the wedge's connect has failed and a ping came after it.
  std::vector<std::chrono::steady_clock::time_point> ping_times{last_ping};
  bool failed = false;
  bool ping_after_failure = false;
  // Only a guard against a connect that never ends: the 6,000,000 SCRAM iterations took over a
  // minute under AddressSanitizer beside CI's other stages.
  const auto until = std::chrono::steady_clock::now() + 150s;  // ctest stops it at 180 s
  while (!ping_after_failure && std::chrono::steady_clock::now() < until) {
    const auto message = manager.receive(1s);
    if (message != "WATCHDOG=1") continue;
    ping_times.push_back(std::chrono::steady_clock::now());
    if (failed) ping_after_failure = true;
    failed = failed || daemon->output().find("wedge[0] connect attempt") != std::string::npos;
  }
  REQUIRE(failed);
  REQUIRE(ping_after_failure);
  std::chrono::steady_clock::duration longest{};
  for (std::size_t i = 1; i < ping_times.size(); ++i)
    longest = std::max(longest, ping_times[i] - ping_times[i - 1]);
  MESSAGE("longest gap between pings: ",
          std::chrono::duration_cast<std::chrono::milliseconds>(longest).count(), " ms");
  CHECK(longest >= kBlockedAtLeast);
  daemon->send_signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
