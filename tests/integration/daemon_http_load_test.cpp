// End-to-end: the HTTP port holds under hostile and busy clients: every scrape is served, none
// starved. How fast is scripts/bench's question (metrics): latency percentiles here would
// measure the machine's CPU queue as much as the server.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "support/daemon_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using pgwd::testing::DaemonFixture;

namespace {

/// Clients that each connect, send half a request and then nothing, and reconnect as soon as
/// the server closes them: a slowloris attack, all on one poll() loop of non-blocking sockets.
class HalfOpenClients {
 public:
  HalfOpenClients(int port, int count) : port_(port), fds_(static_cast<std::size_t>(count), -1) {
    thread_ = std::thread([this] { run(); });
  }
  ~HalfOpenClients() {
    stop_ = true;
    thread_.join();
    for (const int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  int open_now() const { return open_.load(); }
  int reopened() const { return reopened_.load(); }

 private:
  static constexpr std::string_view kHalfRequest =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag";

  int connect_one() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);  // EINPROGRESS
    return fd;
  }

  void run() {
    std::vector<bool> sent(fds_.size(), false);
    for (auto& fd : fds_) fd = connect_one();
    while (!stop_) {
      std::vector<pollfd> polled;
      for (std::size_t i = 0; i < fds_.size(); ++i)
        polled.push_back({fds_[i], static_cast<short>(sent[i] ? POLLIN : POLLOUT), 0});
      // A 50 ms timeout only bounds how late `stop_` is seen; every reaction is to an event.
      if (::poll(polled.data(), polled.size(), 50) < 0) continue;
      int open = 0;
      for (std::size_t i = 0; i < fds_.size(); ++i) {
        const short revents = polled[i].revents;
        if (!sent[i] && (revents & POLLOUT) && !(revents & (POLLERR | POLLHUP))) {
          sent[i] = ::send(fds_[i], kHalfRequest.data(), kHalfRequest.size(), MSG_NOSIGNAL) > 0;
        } else if (revents & (POLLIN | POLLERR | POLLHUP)) {
          // The server answered (408) or closed us: drain nothing, come straight back.
          ::close(fds_[i]);
          fds_[i] = connect_one();
          sent[i] = false;
          ++reopened_;
        }
        if (sent[i]) ++open;
      }
      open_ = open;
    }
  }

  int port_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<int> open_{0};
  std::atomic<int> reopened_{0};
  std::thread thread_;
};

Clock::duration percentile(std::vector<Clock::duration> samples, double p) {
  std::sort(samples.begin(), samples.end());
  const auto at = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1));
  return samples[at];
}

long ms(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) / 1000;
}

double ms_exact(Clock::duration d) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
         1000.0;
}

}  // namespace

TEST_CASE_FIXTURE(DaemonFixture, "http load: 100 half-open clients do not starve scrapes") {
  std::string targets = "targets:\n";
  for (int i = 0; i < 10; ++i) targets += target_yaml("db" + std::to_string(i), 1);
  write_config(targets);
  start_with_config("info");
  REQUIRE(wait_metric("pgwatchdog_up{target=\"db9\"}", 1, 10s));

  HalfOpenClients hostile(metrics_port, 100);
  REQUIRE(waiter.run_until([&] { return hostile.open_now() == 100; }, 10s));
  // Scrape back to back for longer than the server's 10 s idle timeout, so that the hostile
  // clients are dropped and come back at least once while we scrape.
  std::vector<Clock::duration> latencies;
  int failures = 0;
  std::size_t bytes = 0;
  const auto until = Clock::now() + 12s;
  while (Clock::now() < until) {
    const auto start = Clock::now();
    try {
      const auto reply = pgwd::testing::http_get("127.0.0.1", metrics_port, "/metrics", 8s);
      if (reply.status != 200) ++failures;
      bytes = reply.body.size();
    } catch (const std::exception&) {
      ++failures;
    }
    latencies.push_back(Clock::now() - start);
  }
  const int open_at_scrapes_end = hostile.open_now();
  // Dropped clients are accepted again: on a loaded machine the hostile clients' thread may not
  // have sent its half request again when the scrapes end, so this waits for it.
  const bool accepted_again = waiter.run_until([&] { return hostile.open_now() >= 90; }, 10s);
  const int open_at_end = hostile.open_now();
  MESSAGE(latencies.size(), " scrapes of ", bytes / 1024, " KiB beside 100 half-open clients: p50 ",
          ms_exact(percentile(latencies, 0.5)), " ms, p99 ", ms_exact(percentile(latencies, 0.99)),
          " ms, max ", ms(percentile(latencies, 1.0)), " ms; ", failures,
          " failed; hostile clients "
          "reopened ",
          hostile.reopened(), " times, ", open_at_scrapes_end, " open when the scrapes ended, ",
          open_at_end, " at the end");
  // Starved, a scrape would wait for the 10 s idle timeout to drop a hostile client: each must
  // finish within 8 s instead (short of that timeout, with room for a loaded machine). Its
  // latency percentiles are the CPU queue's as much as the server's, reported above and measured
  // on a quiet machine by scripts/bench (metrics).
  CHECK(failures == 0);
  CHECK(hostile.reopened() >= 100);  // the server dropped them (and they came back)
  CHECK(accepted_again);  // and accepted again
}

TEST_CASE_FIXTURE(DaemonFixture, "http load: 50 concurrent scrapers are all served") {
  // One target: a few KiB per scrape, as in the report this test answers (p99 116 ms).
  constexpr int kTargets = 1;
  std::string targets = "targets:\n";
  for (int i = 0; i < kTargets; ++i) targets += target_yaml("db" + std::to_string(i), 1);
  write_config(targets);
  start_with_config("info");
  REQUIRE(wait_metric("pgwatchdog_up{target=\"db0\"}", 1, 10s));

  constexpr int kScrapers = 50;
  constexpr int kScrapesEach = 20;
  std::vector<std::vector<Clock::duration>> per_thread(kScrapers);
  std::atomic<int> failures{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kScrapers; ++t)
    threads.emplace_back([&, t] {
      ++ready;
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kScrapesEach; ++i) {
        const auto start = Clock::now();
        try {
          if (pgwd::testing::http_get("127.0.0.1", metrics_port, "/metrics", 5s).status != 200)
            ++failures;
        } catch (const std::exception&) {
          ++failures;
        }
        per_thread[static_cast<std::size_t>(t)].push_back(Clock::now() - start);
      }
    });
  while (ready < kScrapers) std::this_thread::yield();
  go = true;
  for (auto& thread : threads) thread.join();
  std::vector<Clock::duration> latencies;
  for (const auto& samples : per_thread)
    latencies.insert(latencies.end(), samples.begin(), samples.end());
  MESSAGE(latencies.size(), " scrapes by ", kScrapers, " concurrent scrapers: p50 ",
          ms_exact(percentile(latencies, 0.5)), " ms, p99 ", ms_exact(percentile(latencies, 0.99)),
          " ms, max ", ms(percentile(latencies, 1.0)), " ms; ", failures.load(), " failed");
  // Every scrape served within its 5 s. How long they wait behind each other is the CPU queue's
  // (p99 23 ms on a quiet machine, over 100 ms on a loaded one): scripts/bench measures it
  // (metrics.concurrent_50x20.scrape), and this test asserts only what the server decides.
  CHECK(failures == 0);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
