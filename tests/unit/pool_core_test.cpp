// The pool's housekeeping on a fake clock, with scripted openings: no server, no thread, no
// sleeping. The core's housekeeper is driven by the test (run_housekeeping), the clock is a
// FakeLoop's, and each opening is settled by the test (success, failure, 57P03, or never).
#include "pool/pool_core.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgwd/series_store.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::FakeLoop;

/// Openings the test settles itself.
class ScriptedOpens {
 public:
  struct Opening {
    OpenDone done;
    bool cancelled = false;
  };

  OpenFunction function() {
    return [this](OpenDone done) -> std::function<void()> {
      auto opening = std::make_shared<Opening>();
      opening->done = std::move(done);
      started_.push_back(opening);
      return [opening] { opening->cancelled = true; };
    };
  }
  std::size_t started() const { return started_.size(); }
  /// Started, not settled and not cancelled.
  std::size_t in_flight() const {
    std::size_t count = 0;
    for (const auto& opening : started_) count += opening->done && !opening->cancelled ? 1 : 0;
    return count;
  }
  /// Settles the oldest opening in flight with a connection (a PGconn no server ever answered:
  /// the core only hands it on).
  void succeed() {
    PgConnPtr conn(PQconnectStart("host=/nonexistent-pgwatchdog-test-directory"));
    REQUIRE(conn);
    settle({std::move(conn), {}});
  }
  void fail(Cause cause, std::string sqlstate, std::string message) {
    settle({nullptr, {cause, std::move(sqlstate), std::move(message)}});
  }

 private:
  void settle(OpenOutcome outcome) {
    for (const auto& opening : started_) {
      if (opening->done && !opening->cancelled) {
        const OpenDone done = std::move(opening->done);
        opening->done = nullptr;
        done(std::move(outcome));
        return;
      }
    }
    FAIL("no opening in flight");
  }
  std::vector<std::shared_ptr<Opening>> started_;
};

/// What an acquire_async got.
struct Outcome {
  bool done = false;
  bool leased = false;
  std::string error;
  PoolCore::Clock::time_point at;
};

struct CoreFixture {
  FakeLoop clock;
  ScriptedOpens opens;
  std::shared_ptr<SeriesStore> store = make_series_store();
  std::shared_ptr<PoolCore> core;
  std::vector<std::shared_ptr<Outcome>> outcomes;
  std::vector<Lease> leases;

  /// Whether lend() takes connections (an empty Loan: no watchdog watches it) and keeps their
  /// options, whose callbacks the test then calls as the watchdog would.
  bool lending = false;
  std::vector<LendOptions> lent;
  /// Whether a connection given back is fit for reuse (else, no server ever having answered
  /// it, it is broken and closed).
  bool reusable = false;

  explicit CoreFixture(PoolOptions options) {
    options.name = options.name.empty() ? "unit_pool" : options.name;
    options.dsn = "host=/nonexistent";
    PoolCore::Parts parts;
    // Unless `lending`, nothing is lent: a connection nobody waits for is refused and closed.
    parts.lend = [this](PGconn*, LendOptions lend, std::function<void()>) -> Loan {
      if (!lending) throw LendRefused("no watchdog in this test");
      lent.push_back(std::move(lend));
      return Loan{};
    };
    parts.open = opens.function();
    parts.now = [this] { return clock.now(); };
    parts.reset = [this](PGconn* conn, std::chrono::milliseconds rollback_timeout) {
      return reusable ? ReturnedState::reusable : reset_for_reuse(conn, rollback_timeout);
    };
    core = std::make_shared<PoolCore>(std::move(parts), std::move(options), store);
  }
  ~CoreFixture() {
    for (Lease& lease : leases) lease.discard();
    leases.clear();
    core->stop();
  }
  CoreFixture(const CoreFixture&) = delete;
  CoreFixture& operator=(const CoreFixture&) = delete;

  std::shared_ptr<Outcome> acquire_async() {
    auto outcome = std::make_shared<Outcome>();
    outcomes.push_back(outcome);
    core->acquire_async([this, outcome](Lease lease, std::exception_ptr error) {
      outcome->done = true;
      outcome->at = clock.now();
      outcome->leased = static_cast<bool>(lease);
      if (lease) leases.push_back(std::move(lease));
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& thrown) {
          outcome->error = thrown.what();
        }
      }
    });
    return outcome;
  }
  /// Moves the clock by `by` and does the housekeeping due then; returns its next wake-up.
  PoolCore::Clock::time_point after(Nanos by) {
    clock.advance(by);
    return core->run_housekeeping();
  }
};

PoolOptions options_for(std::size_t max_size, std::chrono::milliseconds acquire_timeout) {
  PoolOptions o;
  o.max_size = max_size;
  o.acquire_timeout = acquire_timeout;
  return o;
}

TEST_CASE("pool core: an async acquire fails at acquire_timeout while its opening hangs") {
  CoreFixture f(options_for(2, 300ms));
  const auto started = f.clock.now();
  const auto waiting = f.acquire_async();
  const auto wake = f.after(0ms);
  CHECK(f.opens.in_flight() == 1);  // opening, and the housekeeper is free meanwhile
  CHECK(wake == started + 300ms);   // its next wake-up is the acquire's own deadline
  f.after(299ms);
  CHECK_FALSE(waiting->done);
  f.after(1ms);
  REQUIRE(waiting->done);
  CHECK_FALSE(waiting->leased);
  CHECK(waiting->at == started + 300ms);
  CHECK(waiting->error.find("acquire_timeout 300 ms") != std::string::npos);
  CHECK(waiting->error.find("1 opening") != std::string::npos);
  CHECK(f.opens.in_flight() == 1);  // the opening goes on: it may serve the next acquire

  // It ends after all: with nobody waiting the new connection is offered to the watchdog
  // (refused here, so closed) and not counted as a failure.
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.core->stats().connect_failures == 0);
  CHECK(f.core->stats().opening == 0);
}

TEST_CASE("pool core: several openings at once up to max_concurrent_opens") {
  PoolOptions o = options_for(10, 5s);
  o.max_concurrent_opens = 3;
  CoreFixture f(o);
  for (int i = 0; i < 5; ++i) f.acquire_async();
  f.after(0ms);
  CHECK(f.opens.started() == 3);
  CHECK(f.opens.in_flight() == 3);
  CHECK(f.core->stats().opening == 3);
  CHECK(f.core->stats().waiters == 5);

  // Each connection that arrives goes to the oldest waiter, and the next opening starts.
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.outcomes[0]->leased);
  CHECK_FALSE(f.outcomes[1]->done);
  CHECK(f.opens.started() == 4);
  CHECK(f.opens.in_flight() == 3);

  f.opens.succeed();
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.outcomes[1]->leased);
  CHECK(f.outcomes[2]->leased);
  // Two waiters left, two openings for them: never more than the waiters want.
  CHECK(f.opens.started() == 5);
  CHECK(f.opens.in_flight() == 2);
  f.opens.succeed();
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.outcomes[3]->leased);
  CHECK(f.outcomes[4]->leased);
  CHECK(f.opens.started() == 5);
  CHECK(f.core->stats().in_use == 5);
}

/// Two idle connections, lent: their waiters timed out before the openings succeeded.
void two_idle(CoreFixture& f) {
  f.acquire_async();
  f.acquire_async();
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 2);
  f.after(100ms);  // acquire_timeout: nobody waits for them now
  f.opens.succeed();
  f.opens.succeed();
  f.after(0ms);
  REQUIRE(f.core->stats().idle == 2);
}

/// The watchdog tells the pool that the `index`th connection it lent died (terminated).
void lose_connection(CoreFixture& f, std::size_t index) {
  LoanDeath death;
  death.cause = Cause::server_shutdown;
  death.sqlstate = "57P01";
  f.lent[index].on_death(death);
}

/// The watchdog tells the pool its server went away, with evidence newer than every lend.
void lose_server(CoreFixture& f) {
  ServerLost lost;
  lost.target = "unit_pool";
  lost.reason = "every lent connection died";
  lost.evidence_at = std::chrono::steady_clock::now();
  f.lent.back().on_server_lost(lost);
}

TEST_CASE("pool core: connections lost while idle are opened again though nobody waits") {
  PoolOptions o = options_for(4, 100ms);
  o.max_concurrent_opens = 4;
  CoreFixture f(o);
  f.lending = true;
  two_idle(f);
  REQUIRE(f.opens.started() == 2);

  lose_connection(f, 0);
  CHECK(f.core->stats().idle == 1);
  f.after(0ms);
  CHECK(f.opens.in_flight() == 1);  // the replacement, with no waiter and min_idle 0
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.core->stats().idle == 2);

  lose_server(f);
  CHECK(f.core->stats().idle == 0);
  f.after(0ms);
  CHECK(f.opens.in_flight() == 2);  // both at once
  f.opens.succeed();
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.core->stats().idle == 2);
  // Owed no more: the pool is back at its size and opens nothing else.
  f.after(1s);
  CHECK(f.opens.started() == 5);
  CHECK(f.opens.in_flight() == 0);
}

TEST_CASE("pool core: a replacement owed waits out a failed opening and its backoff") {
  PoolOptions o = options_for(4, 100ms);
  o.backoff_initial = 200ms;
  o.backoff_max = 200ms;
  CoreFixture f(o);
  f.lending = true;
  two_idle(f);
  lose_connection(f, 1);
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 1);
  f.opens.fail(Cause::connect_failed, "", "connection refused");
  f.after(0ms);
  CHECK(f.opens.in_flight() == 0);
  f.after(100ms);
  CHECK(f.opens.in_flight() == 0);  // backing off (200 ms, jittered: not before half)
  f.after(300ms);
  CHECK(f.opens.in_flight() == 1);  // still owed: tried again
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.core->stats().idle == 2);
  f.after(1s);
  CHECK(f.opens.in_flight() == 0);
}

TEST_CASE("pool core: a connection the watchdog would not take is not opened again") {
  PoolOptions o = options_for(4, 100ms);
  CoreFixture f(o);  // lending off: every lend is refused
  f.acquire_async();
  f.after(0ms);
  f.after(100ms);
  f.opens.succeed();  // nobody waits: lent, refused, closed
  f.after(0ms);
  CHECK(f.core->stats().replaced == 1);
  f.after(1s);
  CHECK(f.opens.started() == 1);  // no loop of openings the watchdog refuses
}

TEST_CASE("pool core: max_size bounds the openings too") {
  PoolOptions o = options_for(2, 5s);
  o.max_concurrent_opens = 4;
  CoreFixture f(o);
  for (int i = 0; i < 4; ++i) f.acquire_async();
  f.after(0ms);
  CHECK(f.opens.in_flight() == 2);
}

/// Room for the connection leased, its waiter's opening and one more, opened all at once.
PoolOptions passing_over_options() {
  PoolOptions o = options_for(3, 5s);
  o.max_concurrent_opens = 3;
  return o;
}

/// One connection leased (its opening took 10 ms: the pool's usual opening) and one async waiter
/// with an opening of its own in flight, `waited` ago. Connections given back are reusable.
std::shared_ptr<Outcome> leased_and_waiting(CoreFixture& f, Nanos waited) {
  f.lending = true;
  f.reusable = true;
  const auto first = f.acquire_async();
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 1);
  f.clock.advance(10ms);
  f.opens.succeed();
  f.after(0ms);
  REQUIRE(first->leased);
  const auto waiter = f.acquire_async();
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 1);
  f.after(waited);
  REQUIRE_FALSE(waiter->done);
  return waiter;
}

/// Gives back the oldest lease the fixture holds (out of `leases` first: a waiter it goes to
/// gets its lease pushed there, inside release()).
void give_back_first(CoreFixture& f) {
  Lease lease = std::move(f.leases.front());
  f.leases.erase(f.leases.begin());
  lease.release();
}

TEST_CASE(
    "pool core: a connection given back while every waiter has its opening in flight is kept "
    "for the next asker") {
  CoreFixture f(passing_over_options());
  const auto waiter = leased_and_waiting(f, 5ms);

  give_back_first(f);
  // Not handed to the waiter, whose opening is on its way: idle, for whoever asks next (on a
  // thread, mostly the one that gave it back), so no thread waits on another's return.
  CHECK_FALSE(waiter->done);
  CHECK(f.core->stats().idle == 1);
  CHECK(f.core->stats().given_to_next_asker == 1);
  CHECK(pgwd::testing::metric_value(f.store, "pgwatchdog_pool_given_to_next_asker_total",
                                    {{"pool", "unit_pool"}}) == 1);
  // The housekeeping does not hand it over either, and looks again when passing over ends:
  // twice the usual opening after the waiter began.
  const auto wake = f.after(0ms);
  CHECK_FALSE(waiter->done);
  CHECK(wake == f.clock.now() + 15ms);

  f.opens.succeed();  // the waiter's opening
  f.after(0ms);
  CHECK(waiter->leased);
  CHECK(f.core->stats().idle == 1);
}

TEST_CASE("pool core: a waiter whose opening is late gets the next connection given back") {
  CoreFixture f(passing_over_options());
  // Waiting longer than twice the usual opening (10 ms): its opening is late (a black-holed
  // host waits out connect_timeout), so it is passed over no more.
  const auto waiter = leased_and_waiting(f, 21ms);

  give_back_first(f);
  CHECK(waiter->leased);
  CHECK(f.core->stats().idle == 0);
  CHECK(f.core->stats().given_to_next_asker == 0);
  CHECK(f.opens.in_flight() == 1);  // still on its way: for the next waiter, or idle
}

TEST_CASE("pool core: a connection given back goes to a waiter that has no opening of its own") {
  CoreFixture f(passing_over_options());
  const auto waiter = leased_and_waiting(f, 1ms);
  const auto second = f.acquire_async();  // max_size: 1 leased, 1 opening, room for 1 more
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 2);
  f.opens.fail(Cause::connect_failed, "", "connection refused");  // one of them fails
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 1);  // a scout, while two wait: one has none coming

  give_back_first(f);
  CHECK(waiter->leased);  // the oldest waiter, as before passing over existed
  CHECK_FALSE(second->done);
}

TEST_CASE(
    "pool core: after a failed opening one opening at a time - a scout - and all at once again "
    "when it succeeds") {
  PoolOptions o = options_for(8, 100ms);
  o.max_concurrent_opens = 4;
  o.backoff_initial = 100ms;
  o.backoff_max = 100ms;
  CoreFixture f(o);
  f.lending = true;
  two_idle(f);
  lose_server(f);
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 2);  // both replacements at once: nothing failed yet
  f.opens.fail(Cause::cannot_connect_now, "57P03", "the database system is starting up");
  f.opens.fail(Cause::cannot_connect_now, "57P03", "the database system is starting up");
  f.after(0ms);
  CHECK(f.opens.in_flight() == 0);
  for (int attempt = 0; attempt < 3; ++attempt) {
    f.after(100ms);
    CHECK(f.opens.in_flight() == 1);  // the scout alone, though two are owed
    f.opens.fail(Cause::cannot_connect_now, "57P03", "the database system is starting up");
    f.after(0ms);
  }
  f.after(100ms);
  REQUIRE(f.opens.in_flight() == 1);
  f.opens.succeed();  // the server takes connections again: the other one starts at once
  f.after(0ms);
  CHECK(f.opens.in_flight() == 1);
  f.opens.succeed();
  f.after(0ms);
  CHECK(f.core->stats().idle == 2);
  CHECK(f.opens.in_flight() == 0);
}

TEST_CASE("pool core: a server starting up (57P03) is waited out and not counted as a failure") {
  PoolOptions o = options_for(2, 5s);
  o.backoff_initial = 100ms;
  o.backoff_max = 10s;
  CoreFixture f(o);
  const auto waiting = f.acquire_async();
  f.after(0ms);
  for (int attempt = 0; attempt < 5; ++attempt) {
    REQUIRE(f.opens.in_flight() == 1);
    f.opens.fail(Cause::cannot_connect_now, "57P03", "the database system is starting up");
    f.after(0ms);
    CHECK(f.opens.in_flight() == 0);
    // Tried again backoff_initial later, every time: the backoff does not grow.
    f.after(99ms);
    CHECK(f.opens.in_flight() == 0);
    f.after(1ms);
  }
  CHECK(f.core->stats().connect_failures == 0);
  CHECK(f.core->stats().connects_server_starting == 5);
  CHECK_FALSE(waiting->done);

  f.opens.succeed();
  f.after(0ms);
  REQUIRE(waiting->done);
  CHECK(waiting->leased);
}

TEST_CASE("pool core: a failed opening counts and backs off and its message is in the timeout") {
  PoolOptions o = options_for(2, 1s);
  o.backoff_initial = 100ms;
  o.backoff_max = 100ms;
  CoreFixture f(o);
  const auto waiting = f.acquire_async();
  f.after(0ms);
  f.opens.fail(Cause::auth_failed, "28P01", "password authentication failed for user \"u\"");
  f.after(0ms);
  CHECK(f.core->stats().connect_failures == 1);
  CHECK(f.opens.in_flight() == 0);
  f.after(1s);
  REQUIRE(waiting->done);
  CHECK(waiting->error.find("last connect error: password authentication failed") !=
        std::string::npos);
}

TEST_CASE("pool core: closing cancels the openings in flight and fails the waiters") {
  PoolOptions o = options_for(4, 5s);
  o.max_concurrent_opens = 2;
  auto f = std::make_unique<CoreFixture>(o);
  const auto first = f->acquire_async();
  const auto second = f->acquire_async();
  f->after(0ms);
  REQUIRE(f->opens.in_flight() == 2);
  f->core->stop();
  CHECK(f->opens.in_flight() == 0);  // both cancelled
  CHECK(first->error.find("is closing") != std::string::npos);
  CHECK(second->error.find("is closing") != std::string::npos);
}

TEST_CASE(
    "pool core: a server lost drops what was lent before the evidence - not a connection lent "
    "since") {
  PoolOptions o = options_for(4, 5s);
  o.min_idle = 2;
  o.max_concurrent_opens = 2;
  CoreFixture f(o);
  f.lending = true;
  f.after(0ms);
  REQUIRE(f.opens.in_flight() == 2);
  f.opens.succeed();
  f.after(0ms);
  REQUIRE(f.lent.size() == 1);
  // The evidence is complete here (the ledger reads the clock under its lock), and the watchdog
  // tells it later from its loop: meanwhile the second connection is lent, as a replacement the
  // pool opened after the first deaths would be.
  const auto evidence_at = std::chrono::steady_clock::now();
  f.opens.succeed();
  f.after(0ms);
  REQUIRE(f.lent.size() == 2);
  REQUIRE(f.core->stats().idle == 2);

  ServerLost lost;
  lost.target = "unit_pool";
  lost.reason = "57P02 on a lent connection";
  lost.evidence_at = evidence_at;
  f.lent.back().on_server_lost(lost);
  CHECK(f.core->stats().idle == 1);  // the one lent since stays
  CHECK(f.core->stats().dropped_while_idle == 1);

  // Told again with evidence newer than every lend, the rest goes.
  lost.evidence_at = std::chrono::steady_clock::now();
  f.lent.back().on_server_lost(lost);
  CHECK(f.core->stats().idle == 0);
  CHECK(f.core->stats().dropped_while_idle == 2);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
