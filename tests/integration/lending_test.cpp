// Lending (pgwd/lending.hpp) against a real cluster: host-owned connections lent to the
// watchdog, killed, notified, probed and taken back, on the host's loop and on a watchdog thread.
// The threaded cases are in the doctest suite "thread", which CI also runs under ThreadSanitizer.
#include "pgwd/lending.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "pgwd/watchdog.hpp"
#include "pgwd/watchdog_thread.hpp"
#include "support/metrics_reader.hpp"
#include "support/process_exits.hpp"
#include "support/test_cluster.hpp"
#include "support/test_loop.hpp"
#include "support/tls_certificates.hpp"
#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::TestCluster;
using pgwd::testing::TestLoop;
using pgwd::testing::WatchdogHarness;
using Clock = std::chrono::steady_clock;

namespace {

/// A connection the test owns, as a pool would: PQfinish'ed by its destructor.
struct OwnedConn {
  explicit OwnedConn(const std::string& conninfo) : conn(PQconnectdb(conninfo.c_str())) {
    REQUIRE(PQstatus(conn) == CONNECTION_OK);
  }
  ~OwnedConn() { PQfinish(conn); }
  OwnedConn(const OwnedConn&) = delete;
  OwnedConn& operator=(const OwnedConn&) = delete;

  /// The connection still works the blocking way its owner uses it.
  bool usable() const {
    PGresult* r = PQexec(conn, "SELECT 1");
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
  }
  void exec(const char* sql) const {
    PGresult* r = PQexec(conn, sql);
    REQUIRE(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
  }
  PGconn* conn;
};

/// What the lending callbacks said, from the watchdog's thread; tests wait on it.
struct Heard {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<LoanDeath> deaths;
  std::vector<ServerLost> lost;

  LendOptions options(const std::string& target) {
    LendOptions o;
    o.target = target;
    o.on_death = [this](const LoanDeath& d) {
      const std::lock_guard lock(mutex);
      deaths.push_back(d);
      changed.notify_all();
    };
    o.on_server_lost = [this](const ServerLost& l) {
      const std::lock_guard lock(mutex);
      lost.push_back(l);
      changed.notify_all();
    };
    return o;
  }
  template <typename Pred>
  bool wait(Pred done, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return done(); });
  }
};

/// Waits until peek() says `verdict` (a probe or heartbeat in flight, or over), at most 10 s.
bool peeked(const Loan& loan, LoanVerdict verdict) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (loan.peek() != verdict && Clock::now() < deadline) std::this_thread::yield();
  return loan.peek() == verdict;
}

std::shared_ptr<spdlog::logger> quiet_logger() {
  static const auto text = std::make_shared<std::ostringstream>();
  static const auto logger = [] {
    auto l = WatchdogHarness::make_logger(text);
    l->set_level(spdlog::level::warn);
    return l;
  }();
  return logger;
}

double lent_metric(const std::shared_ptr<SeriesStore>& store, const std::string& name,
                   std::map<std::string, std::string> labels) {
  return testing::metric_value(store, name, labels);
}

}  // namespace

TEST_SUITE("thread") {
  TEST_CASE(
      "lending: a terminated idle connection is told at once and taken back dead, the others "
      "alive, with no statement sent") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    std::vector<std::unique_ptr<OwnedConn>> conns;
    std::vector<Loan> loans;
    for (int i = 0; i < 3; ++i) {
      conns.push_back(std::make_unique<OwnedConn>(cluster.conninfo("lend")));
      loans.push_back(w.lend(conns.back()->conn, heard.options("pool")));
    }
    CHECK(lent_metric(w.metrics(), "pgwatchdog_lent_connections", {{"target", "pool"}}) == 3);
    const int victim = PQbackendPID(conns[1]->conn);
    cluster.execute("SELECT pg_terminate_backend(" + std::to_string(victim) + ")");
    REQUIRE(heard.wait([&] { return heard.deaths.size() == 1; }, 10s));
    CHECK(heard.deaths[0].cause == Cause::server_shutdown);
    CHECK(heard.deaths[0].sqlstate == "57P01");
    CHECK(loans[1].peek() == LoanVerdict::dead);

    const TakenBack dead = loans[1].take_back();
    CHECK(dead.verdict == LoanVerdict::dead);
    REQUIRE(dead.death);
    CHECK(dead.death->sqlstate == "57P01");
    CHECK(dead.activity);
    CHECK_FALSE(loans[1].lent());
    for (int i : {0, 2}) {
      const TakenBack alive = loans[static_cast<std::size_t>(i)].take_back();
      CHECK(alive.verdict == LoanVerdict::alive);
      CHECK_FALSE(alive.death);
      CHECK(alive.probes == 0);
      CHECK(PQisnonblocking(conns[static_cast<std::size_t>(i)]->conn) == 0);  // restored
      CHECK(conns[static_cast<std::size_t>(i)]->usable());
    }
    // A single terminate is a single death: nothing target-wide, and no probe anywhere.
    CHECK(heard.lost.empty());
    CHECK(cluster.count_statements("lend") == 2);  // the two usable() checks, nothing else
    CHECK(lent_metric(w.metrics(), "pgwatchdog_lent_connections", {{"target", "pool"}}) == 0);
    CHECK(lent_metric(w.metrics(), "pgwatchdog_lent_deaths_total",
                      {{"target", "pool"}, {"cause", "server_shutdown"}}) == 1);
    CHECK(lent_metric(w.metrics(), "pgwatchdog_lent_take_backs_total",
                      {{"target", "pool"}, {"verdict", "alive"}}) == 2);
    CHECK(lent_metric(w.metrics(), "pgwatchdog_server_lost_total", {{"target", "pool"}}) == 0);
  }

  TEST_CASE("lending: a whole server going away is told once per target") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    std::vector<std::unique_ptr<OwnedConn>> conns;
    std::vector<Loan> loans;
    for (int i = 0; i < 4; ++i) {
      conns.push_back(std::make_unique<OwnedConn>(cluster.conninfo("lend")));
      loans.push_back(w.lend(conns.back()->conn, heard.options("pool")));
    }
    cluster.stop(testing::ShutdownMode::fast);
    REQUIRE(heard.wait([&] { return heard.deaths.size() == 4 && heard.lost.size() == 1; }, 10s));
    CHECK(heard.lost[0].target == "pool");
    CHECK(heard.lost[0].reason.find("all 4") != std::string::npos);
    for (Loan& loan : loans) CHECK(loan.take_back().verdict == LoanVerdict::dead);
    CHECK(lent_metric(w.metrics(), "pgwatchdog_server_lost_total", {{"target", "pool"}}) == 1);
    cluster.start();
  }

  TEST_CASE("lending: NOTIFY while lent comes back with the verdict, in order, and is counted") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    OwnedConn listener(cluster.conninfo("lend"));
    listener.exec("LISTEN jobs");
    Loan loan = w.lend(listener.conn, heard.options("pool"));
    cluster.execute("NOTIFY jobs, 'one'");
    cluster.execute("NOTIFY jobs, 'two'");
    // The listener's backend sends them on its own time: take back and lend again until both
    // have come, as a pool's checkouts would. None may be lost or come twice.
    std::vector<LentNotification> got;
    const auto deadline = Clock::now() + 10s;
    for (;;) {
      TakenBack back = loan.take_back();
      CHECK(back.verdict == LoanVerdict::alive);
      got.insert(got.end(), back.notifications.begin(), back.notifications.end());
      if (got.size() >= 2 || Clock::now() > deadline) break;
      loan = w.lend(listener.conn, heard.options("pool"));
    }
    REQUIRE(got.size() == 2);
    CHECK(got[0].channel == "jobs");
    CHECK(got[0].payload == "one");
    CHECK(got[1].payload == "two");
    CHECK(PQnotifies(listener.conn) == nullptr);  // handed over once, not twice
    CHECK(cluster.count_statements("lend") == 1);  // the LISTEN: a NOTIFY needs no probe
    CHECK(lent_metric(w.metrics(), "pgwatchdog_lent_notifications_total", {{"target", "pool"}}) ==
          2);
  }

  TEST_CASE("lending: the owner's notice receiver keeps receiving while lent, and is restored") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    OwnedConn owned(cluster.conninfo("lend"));
    struct Received {
      std::mutex mutex;
      std::vector<std::string> messages;
    } received;
    const auto receiver = +[](void* arg, const PGresult* result) {
      auto* r = static_cast<Received*>(arg);
      const std::lock_guard lock(r->mutex);
      r->messages.emplace_back(PQresultErrorMessage(result));
    };
    PQsetNoticeReceiver(owned.conn, receiver, &received);
    CHECK_THROWS_WITH_AS(w.lend(owned.conn, heard.options("pool")),
                         doctest::Contains("notice_receiver_arg"), LendRefused);
    LendOptions options = heard.options("pool");
    options.notice_receiver_arg = &received;
    Loan loan = w.lend(owned.conn, options);
    cluster.terminate_backends("lend");
    REQUIRE(heard.wait([&] { return heard.deaths.size() == 1; }, 10s));
    {
      const std::lock_guard lock(received.mutex);
      REQUIRE(received.messages.size() == 1);
      CHECK(received.messages[0].find("terminating connection") != std::string::npos);
    }
    CHECK(loan.take_back().verdict == LoanVerdict::dead);
    const bool restored = PQsetNoticeReceiver(owned.conn, nullptr, nullptr) == receiver;
    CHECK(restored);
  }

  TEST_CASE(
      "lending: while a probe is in flight try_take_back says busy, and take_back waits for "
      "its answer") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    OwnedConn owned(cluster.conninfo("lend"));
    const int pid = PQbackendPID(owned.conn);
    LendOptions options = heard.options("pool");
    options.heartbeat = 20ms;  // probes after 20 ms of silence
    Loan loan = w.lend(owned.conn, options);
    cluster.pause_backend(pid);  // the heartbeat's probe now waits for an answer
    REQUIRE(peeked(loan, LoanVerdict::busy));
    const TakenBack busy = loan.try_take_back();
    CHECK(busy.verdict == LoanVerdict::busy);
    CHECK(loan.lent());  // still lent
    std::atomic<bool> returned{false};
    TakenBack back;
    std::thread taker([&] {
      back = loan.take_back();
      returned = true;
    });
    cluster.resume_backend(pid);
    taker.join();
    CHECK(returned);
    CHECK(back.verdict == LoanVerdict::alive);
    CHECK(back.probes >= 1);
    CHECK(owned.usable());
  }

  TEST_CASE(
      "lending: the heartbeat is no statement - the server logs none where it logs the owner's "
      "own - and the connection comes back as it was lent") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    OwnedConn owned(cluster.conninfo("lend_beat"));
    owned.exec("LISTEN control");  // positive control: a statement the server log shows
    const int pid = PQbackendPID(owned.conn);
    LendOptions options = heard.options("pool");
    options.heartbeat = 20ms;
    Loan loan = w.lend(owned.conn, options);
    // Three heartbeats caught in flight: each waits on the stopped backend until it resumes.
    for (int i = 0; i < 3; ++i) {
      cluster.pause_backend(pid);
      REQUIRE(peeked(loan, LoanVerdict::busy));
      cluster.resume_backend(pid);
      REQUIRE(peeked(loan, LoanVerdict::alive));
    }
    const TakenBack back = loan.take_back();
    CHECK(back.verdict == LoanVerdict::alive);
    CHECK(back.probes >= 3);
    CHECK(heard.deaths.empty());
    // The pipeline mode of the lone Sync was left within each round trip, and the owner's
    // blocking mode is restored.
    CHECK(PQpipelineStatus(owned.conn) == PQ_PIPELINE_OFF);
    CHECK(PQisnonblocking(owned.conn) == 0);
    CHECK(owned.usable());
    // The LISTEN and usable()'s SELECT 1: nothing from the heartbeats.
    CHECK(cluster.count_statements("lend_beat") == 2);
  }

  TEST_CASE("lending: a probe without an answer within probe_timeout is a death") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    OwnedConn owned(cluster.conninfo("lend"));
    const int pid = PQbackendPID(owned.conn);
    LendOptions options = heard.options("pool");
    options.heartbeat = 20ms;
    options.probe_timeout = 200ms;
    // Stopped before the loan: its first probe is the one that goes unanswered, however late
    // this thread runs after lend() (a first probe answered would make two).
    cluster.pause_backend(pid);
    Loan loan = w.lend(owned.conn, options);
    REQUIRE(heard.wait([&] { return heard.deaths.size() == 1; }, 10s));
    CHECK(heard.deaths[0].cause == Cause::probe_timeout);
    const TakenBack back = loan.take_back();
    CHECK(back.verdict == LoanVerdict::dead);
    CHECK(back.probes == 1);
    cluster.resume_backend(pid);
  }

  TEST_CASE("lending: over TLS, NOTIFY and a terminate are read through libpq") {
    testing::TlsCertificates certs;
    testing::ClusterSettings settings;
    for (std::string& line : certs.server_config()) settings.extra_config.push_back(line);
    TestCluster cluster(settings);
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    OwnedConn owned(cluster.conninfo("lend") + " sslmode=require");
    REQUIRE(PQsslInUse(owned.conn) == 1);
    owned.exec("LISTEN jobs");
    Loan loan = w.lend(owned.conn, heard.options("pool"));
    cluster.execute("NOTIFY jobs, 'over tls'");
    std::vector<LentNotification> got;
    const auto deadline = Clock::now() + 10s;
    while (got.empty() && Clock::now() < deadline) {
      const TakenBack back = loan.take_back();
      CHECK(back.verdict == LoanVerdict::alive);
      got = back.notifications;
      loan = w.lend(owned.conn, heard.options("pool"));
    }
    REQUIRE(got.size() == 1);
    CHECK(got[0].payload == "over tls");
    cluster.terminate_backends("lend");
    REQUIRE(heard.wait([&] { return heard.deaths.size() == 1; }, 10s));
    CHECK(heard.deaths[0].sqlstate == "57P01");
    CHECK(loan.take_back().verdict == LoanVerdict::dead);
  }

  TEST_CASE("lending: bad connections and options are refused, and nothing is changed") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    CHECK_THROWS_WITH_AS(w.lend(nullptr, heard.options("pool")), "lend: the connection is NULL",
                         LendRefused);
    OwnedConn owned(cluster.conninfo("lend"));
    CHECK_THROWS_WITH_AS(w.lend(owned.conn, heard.options("")),
                         doctest::Contains("target must not be empty"), LendRefused);
    LendOptions no_timeout = heard.options("pool");
    no_timeout.probe_timeout = 0ms;
    CHECK_THROWS_WITH_AS(w.lend(owned.conn, no_timeout),
                         doctest::Contains("probe_timeout must be positive"), LendRefused);

    owned.exec("BEGIN");
    CHECK_THROWS_WITH_AS(w.lend(owned.conn, heard.options("pool")),
                         doctest::Contains("inside a transaction"), LendRefused);
    owned.exec("ROLLBACK");

    REQUIRE(PQsendQuery(owned.conn, "SELECT 1") == 1);
    CHECK_THROWS_WITH_AS(w.lend(owned.conn, heard.options("pool")), doctest::Contains("busy"),
                         LendRefused);
    while (PGresult* r = PQgetResult(owned.conn)) PQclear(r);

    REQUIRE(PQenterPipelineMode(owned.conn) == 1);
    CHECK_THROWS_WITH_AS(w.lend(owned.conn, heard.options("pool")),
                         doctest::Contains("pipeline mode"), LendRefused);
    REQUIRE(PQexitPipelineMode(owned.conn) == 1);

    Loan loan = w.lend(owned.conn, heard.options("pool"));
    CHECK_THROWS_WITH_AS(w.lend(owned.conn, heard.options("pool")),
                         doctest::Contains("already lent"), LendRefused);
    CHECK(loan.take_back().verdict == LoanVerdict::alive);
    CHECK(PQisnonblocking(owned.conn) == 0);
    CHECK(owned.usable());
    CHECK_THROWS_AS(loan.take_back(), std::logic_error);  // nothing lent any more
  }

  TEST_CASE("lending: taken back after the watchdog stopped, the verdict says so and the "
            "connection is intact") {
    TestCluster cluster;
    auto w = std::make_unique<WatchdogThread>(WatchdogOptions{.logger = quiet_logger()});
    Heard heard;
    OwnedConn owned(cluster.conninfo("lend"));
    Loan loan = w->lend(owned.conn, heard.options("pool"));
    w.reset();
    CHECK(loan.peek() == LoanVerdict::watchdog_stopped);
    CHECK(loan.take_back().verdict == LoanVerdict::watchdog_stopped);
    CHECK(owned.usable());
  }

  TEST_CASE(
      "lending: inside on_death the loan may be taken back inline, and the pool's threads "
      "take back and lend again concurrently") {
    TestCluster cluster;
    WatchdogThread w(WatchdogOptions{.logger = quiet_logger()});
    // One connection taken back from inside its own on_death, on the watchdog's thread.
    OwnedConn dying(cluster.conninfo("dying"));
    std::mutex mutex;
    std::condition_variable changed;
    std::optional<Loan> dying_loan;
    std::optional<TakenBack> inline_verdict;
    LendOptions options;
    options.target = "pool";
    options.on_death = [&](const LoanDeath&) {
      const std::lock_guard lock(mutex);
      inline_verdict = dying_loan->take_back();
      changed.notify_all();
    };
    {
      const std::lock_guard lock(mutex);
      dying_loan = w.lend(dying.conn, options);
    }
    // Meanwhile 4 threads lend and take back their own connections, with a heartbeat probing.
    std::atomic<bool> failed{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t) {
      pool.emplace_back([&, t] {
        OwnedConn own(cluster.conninfo("churn"));
        LendOptions o;
        o.target = "churn";
        o.heartbeat = 1ms;
        for (int i = 0; i < 200; ++i) {
          Loan loan = w.lend(own.conn, o);
          for (int spin = 0; spin < (i + t) % 7 * 50; ++spin) std::this_thread::yield();
          const TakenBack back = (i % 2) ? loan.take_back() : TakenBack{};
          if ((i % 2) && back.verdict != LoanVerdict::alive) failed = true;
          // Even i: the Loan's destructor takes it back, waiting for a probe in flight.
        }
        if (!own.usable()) failed = true;
      });
    }
    cluster.terminate_backends("dying");
    for (auto& t : pool) t.join();
    CHECK_FALSE(failed);
    std::unique_lock lock(mutex);
    REQUIRE(changed.wait_for(lock, 10s, [&] { return inline_verdict.has_value(); }));
    CHECK(inline_verdict->verdict == LoanVerdict::dead);
  }
}

TEST_CASE(
    "lending: bytes that arrived before the loop looked are not missed (take-back's last look)") {
  // The host's loop never runs here: only take-back's own last read can see the end.
  TestCluster cluster;
  TestLoop loop;
  Watchdog w(loop.base(), WatchdogOptions{.logger = quiet_logger()});
  OwnedConn owned(cluster.conninfo("lend"));
  LendOptions options;
  options.target = "pool";
  Loan loan = w.lend(owned.conn, options);
  const int pid = PQbackendPID(owned.conn);
  // The backend's exit, seen through a pidfd (no query per look): its FATAL is on the socket by
  // then. The timeout only guards against a hang.
  pgwd::testing::ProcessExits exits({pid});
  cluster.terminate_backends("lend");
  REQUIRE(exits.wait(30s));
  const TakenBack back = loan.take_back();
  CHECK(back.verdict == LoanVerdict::dead);
  REQUIRE(back.death);
  CHECK(back.death->sqlstate == "57P01");
}

TEST_CASE("lending: destroying the Watchdog inside on_death is safe") {
  TestCluster cluster;
  TestLoop loop;
  auto w = std::make_unique<Watchdog>(loop.base(), WatchdogOptions{.logger = quiet_logger()});
  OwnedConn a(cluster.conninfo("lend"));
  OwnedConn b(cluster.conninfo("lend"));
  LendOptions options;
  options.target = "pool";
  int told = 0;
  options.on_death = [&](const LoanDeath&) {
    ++told;
    w.reset();  // both die together: the second is never told, the Watchdog being gone
  };
  Loan la = w->lend(a.conn, options);
  Loan lb = w->lend(b.conn, options);
  cluster.terminate_backends("lend");
  REQUIRE(loop.run_until([&] { return w == nullptr; }, 10s));
  loop.run_for(50ms);  // whatever was still due must not run
  CHECK(told == 1);
  const LoanVerdict va = la.take_back().verdict;
  const LoanVerdict vb = lb.take_back().verdict;
  CHECK((va == LoanVerdict::dead || va == LoanVerdict::watchdog_stopped));
  CHECK((vb == LoanVerdict::dead || vb == LoanVerdict::watchdog_stopped));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
