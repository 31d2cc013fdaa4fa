// LoanLoop: a lent connection's callbacks run holding the loan's mutex, and only while the loan
// is the loop's; its socket is watched through a duplicate descriptor that the loop owns.
#include "lending/loan_loop.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "support/fake_loop.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::FakeLoop;

namespace {

struct SocketPair {
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0); }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  int fds[2];
};

}  // namespace

TEST_CASE("loan loop: callbacks run under the loan's mutex while lent, and never once it is back") {
  FakeLoop fake;
  LoanState loan;
  SocketPair pair;
  const int owner_fd = pair.fds[0];
  UniqueFd duplicate(::fcntl(owner_fd, F_DUPFD_CLOEXEC, 0));
  const int duplicate_fd = duplicate.get();
  REQUIRE(duplicate_fd >= 0);
  LoanLoop loop(fake, loan, owner_fd, std::move(duplicate));

  int timer_runs = 0;
  int socket_runs = 0;
  bool locked_inside = false;
  TimerPtr timer = loop.make_timer([&] {
    ++timer_runs;
    locked_inside = !loan.mutex.try_lock();
    if (!locked_inside) loan.mutex.unlock();
  });
  SocketWatchPtr watch = loop.make_socket_watch([&](Readiness) { ++socket_runs; });
  watch->watch(owner_fd, Interest::read);

  // The loop watches the duplicate, not the owner's descriptor: the owner may close its own.
  CHECK(fake.make_ready(owner_fd, {.readable = true}) == 0);
  CHECK(fake.make_ready(duplicate_fd, {.readable = true}) == 1);
  CHECK(socket_runs == 1);
  timer->arm(1ms);
  fake.advance(1ms);
  CHECK(timer_runs == 1);
  CHECK(locked_inside);

  // Taken back: a late wake-up or timer does nothing, and the watch stops listening.
  loan.phase = LoanState::Phase::returned;
  CHECK(fake.make_ready(duplicate_fd, {.readable = true}) == 1);
  CHECK(socket_runs == 1);
  CHECK(fake.active_watches() == 0);
  timer->arm(1ms);
  fake.advance(1ms);
  CHECK(timer_runs == 1);
}

TEST_CASE("loan loop: a lent connection resolves nothing") {
  FakeLoop fake;
  LoanState loan;
  LoanLoop loop(fake, loan, -1, UniqueFd(-1));
  CHECK_THROWS_AS(loop.make_resolver({}), std::logic_error);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
