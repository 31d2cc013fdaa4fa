// The lending state machine (LentConnection over the IdleWatch) on a scripted session and the
// fake loop: a lent connection is read on a wake-up, probed only when that does not settle it,
// under its deadline, and never closed or reconnected; every step is written into the loan.
#include "lending/lent_connection.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/fake_loop.hpp"
#include "support/scripted_link.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::FakeLoop;
using pgwd::testing::ScriptedSession;

/// One loan, lent to the loop the way LendingDesk::adopt() does it: constructed and started
/// holding the loan's mutex. The test plays the session's callbacks holding the mutex too, as
/// the LoanLoop's socket callbacks do.
struct LentFixture {
  FakeLoop fake;
  std::shared_ptr<LoanState> loan = make_loan();
  ScriptedSession* session = nullptr;
  int deaths = 0;
  int probe_ends = 0;
  std::unique_ptr<LentConnection> connection;

  static std::shared_ptr<LoanState> make_loan() {
    auto loan = std::make_shared<LoanState>();
    loan->options.target = "lent";
    loan->options.probe_timeout = 5000ms;
    loan->id = 7;
    return loan;
  }

  void lend() {
    const std::lock_guard lock(loan->mutex);
    connection = std::make_unique<LentConnection>(
        loan, fake, UniqueFd(-1),
        [this](Loop&, SessionCallbacks& callbacks) {
          auto made = std::make_unique<ScriptedSession>(callbacks);
          session = made.get();
          return made;
        },
        [this](LoanState& dead) {
          CHECK_FALSE(dead.mutex.try_lock());  // told holding the mutex
          ++deaths;
        },
        [this](LoanState&) { ++probe_ends; });
    connection->start();
  }

  void wake(Inspection inspection) {
    const std::lock_guard lock(loan->mutex);
    session->next_inspection = std::move(inspection);
    session->cb.on_readable();
  }
  void answer(ProbeDone done) {
    const std::lock_guard lock(loan->mutex);
    session->cb.on_probe_done(done);
  }
  LoanState::Phase phase() {
    const std::lock_guard lock(loan->mutex);
    return loan->phase;
  }
  long count(const std::string& call) const {
    return std::count(session->calls.begin(), session->calls.end(), call);
  }
};

Inspection explained_by_notify() {
  Inspection seen;
  seen.verdict = Inspection::Verdict::explained;
  seen.arrived.notifications.push_back({"jobs", "42", 1234});
  return seen;
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: a wake-up that a NOTIFY explains is kept - "
                  "nothing sent and the loan still watched") {
  lend();
  CHECK(session->calls == std::vector<std::string>{"watch_idle"});
  wake(explained_by_notify());
  CHECK(phase() == LoanState::Phase::watching);
  CHECK(loan->activity);
  REQUIRE(loan->notifications.size() == 1);
  CHECK(loan->notifications[0].channel == "jobs");
  CHECK(loan->notifications[0].payload == "42");
  CHECK(count("probe") == 0);
  CHECK(count("close") == 0);
  CHECK(loan->probes == 0);
  CHECK(deaths == 0);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: an unexplained wake-up is probed - the answer "
                  "makes it idle again and tells the lender once") {
  lend();
  wake({});
  CHECK(phase() == LoanState::Phase::probing);
  CHECK(count("probe") == 1);
  CHECK(loan->probes == 1);
  CHECK(loan->probe_sent_at == fake.now());
  CHECK(probe_ends == 0);
  fake.advance(10ms);
  answer({});
  CHECK(phase() == LoanState::Phase::watching);
  CHECK(probe_ends == 1);
  CHECK(count("watch_idle") == 2);
  // Its deadline went with the answer.
  fake.advance(10s);
  CHECK(phase() == LoanState::Phase::watching);
  CHECK(deaths == 0);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: a probe's deadline reads the socket before it "
                  "gives up - an answer already there is no timeout") {
  lend();
  wake({});
  session->answer = ProbeDone{};
  fake.advance(5000ms);
  CHECK(count("read_answer") == 1);
  CHECK(phase() == LoanState::Phase::watching);
  CHECK(probe_ends == 1);
  CHECK(deaths == 0);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: a probe unanswered within probe_timeout is a "
                  "death - what came before the answer is kept") {
  lend();
  wake({});
  session->held.notifications.push_back({"jobs", "before", 99});
  fake.advance(4999ms);
  CHECK(phase() == LoanState::Phase::probing);
  fake.advance(1ms);
  CHECK(phase() == LoanState::Phase::dead);
  REQUIRE(loan->death);
  CHECK(loan->death->cause == Cause::probe_timeout);
  CHECK(loan->death->message == "no answer to the probe within 5000ms");
  REQUIRE(loan->notifications.size() == 1);
  CHECK(loan->notifications[0].payload == "before");
  CHECK(deaths == 1);
  CHECK(count("close") == 1);
  CHECK(probe_ends == 0);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: a session the server ended dies with the "
                  "server's cause and nothing is sent") {
  lend();
  Inspection seen;
  seen.verdict = Inspection::Verdict::went_away;
  seen.failure = {Cause::server_shutdown, "57P01",
                  "terminating connection due to administrator command"};
  wake(seen);
  CHECK(phase() == LoanState::Phase::dead);
  REQUIRE(loan->death);
  CHECK(loan->death->cause == Cause::server_shutdown);
  CHECK(loan->death->sqlstate == "57P01");
  CHECK(count("probe") == 0);
  CHECK(count("close") == 1);
  CHECK(deaths == 1);
  // Dead is final: a late wake-up or deadline does nothing.
  fake.advance(10s);
  CHECK(deaths == 1);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: a failed probe is a death with the probe's "
                  "cause") {
  lend();
  wake({});
  ProbeDone failed;
  failed.failure = Failure{Cause::closed, "", "server closed the connection"};
  answer(failed);
  CHECK(phase() == LoanState::Phase::dead);
  REQUIRE(loan->death);
  CHECK(loan->death->cause == Cause::closed);
  CHECK(deaths == 1);
  CHECK(probe_ends == 0);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: the heartbeat (the session's - no probe query) comes after "
                  "its silence and a wake-up that something explains starts the silence again") {
  loan->options.heartbeat = 100ms;
  lend();
  fake.advance(60ms);
  wake(explained_by_notify());
  fake.advance(60ms);  // 120 ms after the loan, 60 ms after the wake-up
  CHECK(count("heartbeat") == 0);
  fake.advance(40ms);
  CHECK(count("heartbeat") == 1);
  CHECK(count("probe") == 0);
  CHECK(phase() == LoanState::Phase::probing);
  CHECK(loan->probes == 1);
  // No second heartbeat while the first waits for its answer.
  fake.advance(200ms);
  CHECK(count("heartbeat") == 1);
  answer({});
  fake.advance(100ms);
  CHECK(count("heartbeat") == 2);
  CHECK(count("probe") == 0);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: once taken back nothing of it runs - no "
                  "heartbeat and no deadline") {
  loan->options.heartbeat = 100ms;
  lend();
  wake({});  // a probe in flight
  {
    const std::lock_guard lock(loan->mutex);
    loan->phase = LoanState::Phase::returned;
  }
  fake.advance(10s);
  CHECK(phase() == LoanState::Phase::returned);
  CHECK(deaths == 0);
  CHECK(count("read_answer") == 0);
  CHECK(count("probe") == 1);
}

TEST_CASE_FIXTURE(LentFixture,
                  "lent connection: the watchdog stopping during a probe marks "
                  "the loan not clean and lets go of it") {
  lend();
  wake({});
  connection->stop();
  CHECK(phase() == LoanState::Phase::stopped);
  REQUIRE(loan->death);
  CHECK(loan->death->cause == Cause::probe_failed);
  CHECK(count("close") == 1);
  CHECK(deaths == 0);
  // The probe's answer arriving late changes nothing.
  fake.advance(10s);
  CHECK(phase() == LoanState::Phase::stopped);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
