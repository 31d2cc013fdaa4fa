// End-to-end: hostile and mistyped configuration against the real binary (docs/configuration.md
// "Limits"). At start-up and in --check-config each case exits 2 with a one-line message, within a
// time and memory bound; on SIGHUP each is refused while the running configuration keeps detecting.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "support/daemon_fixture.hpp"
#include "support/subprocess.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;
using pgwd::testing::DaemonProcess;

namespace {

// The process start and a sanitizer runtime are included. "At once" is judged on the CPU the daemon spends, which it decides (a runaway read of /dev/zero
// took seconds of it and gigabytes), not on wall time, which the machine's load decides (4.1 s
// for /dev/zero once on a loaded machine, most of it waiting for a CPU). A daemon that blocked
// instead would not exit within the wait below at all.
constexpr auto kExitBound = 3s;
constexpr long kPeakRssBoundKiB = 256 * 1024;  // the bugs took 5-11 GB

struct HostileCase {
  std::string what;
  std::string content;  // written to the config file; empty: `path` is used as it is
  std::string message;  // part of the one-line error
  std::string path = {};
};

std::string bomb() {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 8; ++level) {
    text += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", *a" : "*a") + std::to_string(level - 1);
    text += "]\n";
  }
  return text;
}

std::vector<HostileCase> hostile_cases(const std::string& good_target) {
  const std::string targets = "targets:\n" + good_target;
  return {
      {"a lone comma", ",", "YAML syntax error: unexpected ','"},
      {"the typo ,targets:", ",targets:\n" + good_target, "YAML syntax error: unexpected ','"},
      {"a duration past what nanoseconds hold", targets + "    heartbeat: 2562048h\n",
       "heartbeat: '2562048h' is out of range (0s to 24h)"},
      {"connections: 2147483647", targets + "    connections: 2147483647\n",
       "connections: '2147483647' is out of range (1 to 1000)"},
      {"an alias bomb", bomb(), "once its YAML aliases are expanded"},
      {"a name that is not UTF-8", "targets:\n  - name: a\xff\n    dsn: host=x\n",
       "not valid UTF-8 at byte offset 20"},
      {"a bidi control in a name", "targets:\n  - name: \"a\\u202Eb\"\n    dsn: host=x\n",
       "name contains U+202E, which is not printable, at byte offset 1"},
      {"a file over 4 MiB", "# " + std::string(4 * 1024 * 1024 + 10, 'x') + "\n",
       "larger than 4 MiB, the limit for a config file"},
      {"/dev/zero", "", "not a regular file (a character device)", "/dev/zero"},
  };
}

/// CPU time (user + system) of the children reaped so far.
std::chrono::microseconds children_cpu() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  const auto us = [](const timeval& t) {
    return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

/// CPU time (user + system) a live process has used so far, from /proc/<pid>/stat.
std::chrono::microseconds process_cpu(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  return std::chrono::microseconds((utime + stime) * 1000000ULL /
                                   static_cast<unsigned long long>(ticks));
}

long children_peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  return usage.ru_maxrss;
}

std::size_t count_of(const std::string& text, std::string_view needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++count;
  return count;
}

std::string up(const std::string& target) {
  return "pgwatchdog_up{target=\"" + target + "\"}";
}

}  // namespace

TEST_CASE("hostile config: each case exits 2 at once, at start-up and with --check-config") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("pgwd-hostile-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "pgwatchdog.yaml").string();
  const std::string fifo = (dir / "fifo.yaml").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const std::string good = "  - name: ok\n    dsn: \"host=127.0.0.1 port=1\"\n";
  std::vector<HostileCase> cases = hostile_cases(good);
  cases.push_back({"a FIFO nobody writes to", "", "not a regular file (a FIFO)", fifo});

  for (const HostileCase& c : cases) {
    for (const bool check_config : {true, false}) {
      CAPTURE(c.what);
      CAPTURE(check_config);
      std::string path = c.path;
      if (path.empty()) {
        std::ofstream(file, std::ios::binary | std::ios::trunc) << c.content;
        path = file;
      }
      std::vector<std::string> args{"--config", path, "--listen", "127.0.0.1:0"};
      if (check_config) args.push_back("--check-config");
      const auto start = std::chrono::steady_clock::now();
      const auto cpu_before = children_cpu();
      DaemonProcess daemon(PGWD_DAEMON_BINARY, args);
      const auto code = daemon.wait_exit(10s);
      const auto took = std::chrono::steady_clock::now() - start;
      const auto cpu = children_cpu() - cpu_before;  // the daemon's, reaped by wait_exit
      REQUIRE_MESSAGE(code.has_value(), "pgwatchdog did not exit:\n", daemon.output());
      CHECK(*code == 2);
      const std::string output = daemon.output();
      CHECK_MESSAGE(output.find(c.message) != std::string::npos, output);
      CHECK(output.rfind("pgwatchdog: error: ", 0) == 0);
      CHECK(count_of(output, "\n") == 1);
      CHECK_MESSAGE(
          cpu < kExitBound, std::chrono::duration_cast<std::chrono::milliseconds>(cpu).count(),
          " ms of CPU, ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
          " ms in all");
    }
  }
  // Every child has been reaped: the largest of them stayed small.
  CHECK_MESSAGE(children_peak_rss_kib() < kPeakRssBoundKiB, children_peak_rss_kib(), " KiB");
  std::filesystem::remove_all(dir);
}

TEST_CASE("hostile config: a bad listen address or --target name exits 2 with one line") {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : {
           Case{{"--target", "a=host=x", "--listen", "[::1]:10432", "--check-config"},
                "IPv6 addresses are not supported"},
           Case{{"--target", "a=host=x", "--listen", "192.0.2.1:10432", "--check-config"},
                "listen: cannot listen on 192.0.2.1:10432: Cannot assign requested address"},
           Case{{"--target", "a\nb=host=x", "--check-config"},
                "--target: target 'a\\x0ab': name contains U+000A, which is not printable"},
           Case{{"--target",
                 "a\xc0\xaf"
                 "b=host=x"},
                "name is not valid UTF-8 at byte offset 1"},
       }) {
    CAPTURE(c.message);
    DaemonProcess daemon(PGWD_DAEMON_BINARY, c.args);
    const auto code = daemon.wait_exit(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 2);
    CHECK_MESSAGE(daemon.output().find(c.message) != std::string::npos, daemon.output());
    CHECK(count_of(daemon.output(), "\n") == 1);
  }
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "hostile config: SIGHUP refuses each case and the daemon keeps detecting") {
  write_config("targets:\n" + target_yaml("live", 2));
  start_with_config();
  REQUIRE(wait_metric(up("live"), 1, 10s));
  const std::string fifo = config_path.string() + ".fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);

  // The same target without a connections: line, which a case adds.
  std::vector<HostileCase> cases =
      hostile_cases("  - name: live\n    dsn: \"" + cluster.conninfo("live") + "\"\n");
  cases.push_back({"a FIFO nobody writes to", "", "not a regular file (a FIFO)", fifo});
  const std::string refused = "SIGHUP: reload refused, still running the previous configuration: ";
  for (const HostileCase& c : cases) {
    CAPTURE(c.what);
    std::filesystem::remove(config_path);
    if (c.path.empty())
      std::ofstream(config_path, std::ios::binary) << c.content;
    else
      std::filesystem::create_symlink(c.path, config_path);  // the file named on the command line
    const std::size_t refusals = count_of(daemon->output(), refused);
    const auto start = std::chrono::steady_clock::now();
    const auto cpu_before = process_cpu(daemon->pid());
    daemon->send_signal(SIGHUP);
    REQUIRE(waiter.run_until([&] { return count_of(daemon->output(), refused) > refusals; }, 10s));
    const auto took = std::chrono::steady_clock::now() - start;
    // The refusal's cost is the daemon's CPU (all of its threads), not the wall time a loaded
    // machine adds; a refusal that blocked would not come within the wait above.
    const auto cpu = process_cpu(daemon->pid()) - cpu_before;
    CHECK_MESSAGE(cpu < 1s, std::chrono::duration_cast<std::chrono::milliseconds>(cpu).count(),
                  " ms of CPU, ",
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                  " ms in all");
    CHECK_MESSAGE(daemon->output().find(c.message) != std::string::npos, daemon->output());
    REQUIRE(daemon->running());
    CHECK(metric(up("live")) == 1);  // the loop still serves a live configuration
  }

  // Still detecting: the previous configuration's connections are watched as before.
  CHECK(cluster.backend_pids("live").size() == 2);
  REQUIRE(cluster.terminate_backends("live") == 2);
  const std::string lost =
      "pgwatchdog_disconnects_total{cause=\"server_shutdown\",target=\"live\"}";
  CHECK(wait_metric(lost, 2, 5s));
  CHECK(wait_metric(up("live"), 1, 10s));

  // Its memory stayed small (VmHWM: the peak RSS of the running daemon).
  std::ifstream status("/proc/" + std::to_string(daemon->pid()) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) {
      const long peak_kib = std::stol(line.substr(6));
      CHECK_MESSAGE(peak_kib < kPeakRssBoundKiB, peak_kib, " KiB");
    }

  // And the loop never blocked on the FIFO: SIGTERM ends it (a loop blocked in a write to it
  // would never end; 30 s is only the hang guard, for the ASan build on a loaded machine).
  daemon->send_signal(SIGTERM);
  CHECK(daemon->wait_exit(30s) == 0);
  std::filesystem::remove(fifo);
}

TEST_CASE("hostile config: /metrics stays valid for any accepted target name (promtool)") {
  const std::vector<std::string> names{"q\"uote",           "back\\slash",
                                       "\\n not a newline", "\u00e9t\u00e9 \u6771\u4eac \U0001F418",
                                       "a b {},#",          "'single'"};
  const int port = pgwd::testing::free_tcp_port();
  std::vector<std::string> args{"--listen", "127.0.0.1:" + std::to_string(port)};
  for (const std::string& name : names) {
    args.push_back("--target");
    // The first '=' ends the name. It never connects: the series exist anyway.
    args.push_back(name + "=host=127.0.0.1 port=1");
  }
  DaemonProcess daemon(PGWD_DAEMON_BINARY, args);
  REQUIRE_MESSAGE(daemon.wait_for_output("serving metrics", 10s), daemon.output());
  const std::string text = pgwd::testing::http_get("127.0.0.1", port, "/metrics").body;
  // Escaped the way the text format says: \" and \\ inside label values.
  CHECK(text.find("pgwatchdog_up{target=\"q\\\"uote\"} 0") != std::string::npos);
  CHECK(text.find("pgwatchdog_up{target=\"back\\\\slash\"} 0") != std::string::npos);
  CHECK(text.find("pgwatchdog_up{target=\"\u00e9t\u00e9 \u6771\u4eac \U0001F418\"} 0") !=
        std::string::npos);
  const std::filesystem::path scrape_file =
      std::filesystem::temp_directory_path() / ("pgwd-names-" + std::to_string(getpid()) + ".prom");
  std::ofstream(scrape_file) << text;
  const auto promtool =
      pgwd::testing::run_process({"sh", "-c", "promtool check metrics < " + scrape_file.string()});
  CHECK(promtool.exit_code == 0);
  CHECK_MESSAGE(promtool.output == "", promtool.output);
  std::filesystem::remove(scrape_file);
  daemon.send_signal(SIGTERM);
  CHECK(daemon.wait_exit(30s) == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
