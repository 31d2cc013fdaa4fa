// End-to-end: a stderr that nobody reads (a stuck log shipper) never stops detection, and
// SIGTERM still exits 0 promptly (docs/daemon.md "Logs").
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <vector>

#include "support/daemon_fixture.hpp"
#include "support/loop_gaps.hpp"
#include "support/poll_deadline.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::testing::at_most_every;

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;

namespace {

constexpr int kConnections = 4;
constexpr int kNotifies = 10000;  // per round, each delivered to every connection

// A FIFO held open for reading and writing by the test and never read: full before the daemon
// writes its first line, so every write the daemon makes to it would block.
class BlockedPipe {
 public:
  explicit BlockedPipe(std::string path) : path_(std::move(path)) {
    REQUIRE(mkfifo(path_.c_str(), 0600) == 0);
    fd_ = ::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
    const std::vector<char> chunk(4096, '#');
    while (::write(fd_, chunk.data(), chunk.size()) > 0) {
    }
    REQUIRE(errno == EAGAIN);
  }
  ~BlockedPipe() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  BlockedPipe(const BlockedPipe&) = delete;
  BlockedPipe& operator=(const BlockedPipe&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string series(const std::string& name, const std::string& label, const std::string& value) {
  return name + "{" + label + "=\"" + value + "\",target=\"blk\"}";
}

}  // namespace

TEST_CASE_FIXTURE(DaemonFixture,
                  "blocked log: with stderr never read, disconnects are still detected at once "
                  "and lines are dropped, counted") {
  const BlockedPipe pipe((config_path.parent_path() / "stderr.fifo").string());
  write_config("defaults:\n  backoff_initial: 10ms\n  backoff_max: 100ms\ntargets:\n" +
               target_yaml("blk", kConnections, "    listen_channels: [chatter]\n"));
  // stderr into the full FIFO; stdout stays the harness's file.
  daemon.emplace("sh",
                 std::vector<std::string>{"-c", "exec \"$0\" \"$@\" 2>\"$PGWD_STDERR_FIFO\"",
                                          PGWD_DAEMON_BINARY, "--config", config_path.string(),
                                          "--listen", listen(), "--log-level", "trace"},
                 std::map<std::string, std::string>{{"PGWD_STDERR_FIFO", pipe.path()}});
  // Its log is not readable: the scrape says when it is up.
  const auto sample_now = [&](const std::string& name) -> std::optional<double> {
    try {
      return metric(name);
    } catch (const std::runtime_error&) {
      return std::nullopt;  // not listening yet
    }
  };
  const std::string healthy = series("pgwatchdog_connections", "state", "healthy");
  const std::string terminated = series("pgwatchdog_disconnects_total", "cause", "server_shutdown");
  REQUIRE(waiter.run_until([&] { return sample_now(healthy) == kConnections; }, 15s));

  // Detection is bounded less the time the daemon's watch loop (its main thread) waited for a
  // CPU meanwhile: the point is that a blocked stderr never holds the loop, and on a loaded
  // machine (AddressSanitizer, the suite beside it) the rest of 10,000 NOTIFYs' work took 3.9 s.
  std::chrono::steady_clock::duration slowest{};
  std::chrono::steady_clock::duration slowest_waited{};
  for (int round = 1; round <= 3; ++round) {
    CAPTURE(round);
    // Thousands of NOTIFYs, each logged at debug on every connection: far more lines than the
    // log's queue holds, all while stderr is blocked.
    cluster.execute("SELECT pg_notify('chatter', g::text) FROM generate_series(1, " +
                    std::to_string(kNotifies) + ") AS g");
    // Terminate only once every NOTIFY is read. A backend that is terminated while its socket
    // is full (the daemon still reading, slowly under AddressSanitizer and load) sends no FATAL:
    // PostgreSQL's ProcessClientWriteInterrupt drops the error rather than block again or break
    // the protocol, so the daemon sees a bare close, rightly counted as `closed`, not as the
    // `server_shutdown` this test is about. Reading them all is itself the point: the blocked
    // log must not slow the loop's reading.
    REQUIRE(waiter.run_until(
        [&] {
          return metric("pgwatchdog_notifications_total{target=\"blk\"}") ==
                 double(round) * kNotifies * kConnections;
        },
        60s));
    REQUIRE(waiter.run_until(
        at_most_every(50ms, [&] { return cluster.backend_pids("blk").size() == kConnections; }),
        5s));
    const auto terminating = std::chrono::steady_clock::now();
    // The machine's share of the way, from the terminate call to the scrape that shows it: the
    // daemon's threads (its loop, its HTTP server) and this process's (the admin call, the
    // scrapes) waiting for a CPU.
    const pgwd::testing::ProcessCpuWaitSince daemon_wait(daemon->pid());
    const pgwd::testing::ProcessCpuWaitSince test_wait(::getpid());
    REQUIRE(cluster.terminate_backends("blk") == kConnections);
    REQUIRE(waiter.run_until([&] { return metric(terminated) == round * kConnections; }, 30s));
    const auto took = std::chrono::steady_clock::now() - terminating;
    const auto waited = daemon_wait.waited() + test_wait.waited();
    if (took - waited > slowest - slowest_waited) {
      slowest = took;
      slowest_waited = waited;
    }
    REQUIRE(waiter.run_until([&] { return metric(healthy) == kConnections; }, 5s));
  }
  MESSAGE("slowest detection of a terminate with stderr blocked: ",
          std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count(),
          " ms, of which the daemon's and the test's threads waited ",
          std::chrono::duration_cast<std::chrono::milliseconds>(slowest_waited).count(),
          " ms for a CPU");
  CHECK(slowest - slowest_waited < 2s);
  REQUIRE(waiter.run_until(
      [&] { return metric("pgwatchdog_log_messages_dropped_total").value_or(0) > 0; }, 5s));
  MESSAGE("log lines dropped: ", *metric("pgwatchdog_log_messages_dropped_total"));

  // SIGTERM: the drain gives up on the blocked pipe after a bounded wait, and the exit is clean.
  // The bound is pgwatchdog's own deadline (docs/daemon.md: it waits at most 500 ms for a
  // blocked stderr, then exits), with room; a drain that waited for the pipe would never end.
  // Wall time, so the time the daemon's main thread, which runs the shutdown and the drain's
  // wait, spent waiting for a CPU is taken out, read once it has exited and before it is reaped.
  const pgwd::testing::CpuWaitSince main_wait(daemon->pid(), daemon->pid());
  std::chrono::steady_clock::duration main_waited{};
  const auto signalled = std::chrono::steady_clock::now();
  daemon->send_signal(SIGTERM);
  const auto code = daemon->wait_exit(10s, [&] { main_waited = main_wait.waited(); });
  const auto took = std::chrono::steady_clock::now() - signalled;
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  MESSAGE("SIGTERM to exit with stderr blocked: ",
          std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
          " ms, of which its main thread waited ",
          std::chrono::duration_cast<std::chrono::milliseconds>(main_waited).count(),
          " ms for a CPU");
  CHECK(took - main_waited < 3s);
  // A hang guard: the backends' exit after the daemon closed them is the server's time.
  CHECK(waiter.run_until(at_most_every(50ms, [&] { return cluster.backend_pids("blk").empty(); }),
                         30s));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
