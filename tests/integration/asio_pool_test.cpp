// pgwd::async_acquire (pgwd/adapters/asio_pool.hpp) on an io_context against a real cluster:
// a coroutine waits for a connection while the loop keeps running, timeouts arrive as
// exceptions, and the completion-handler form runs on the io_context's thread.
#include "pgwd/adapters/asio_pool.hpp"

#include <doctest/doctest.h>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <optional>
#include <thread>

#include "support/pool_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using pgwd::testing::PoolFixture;

TEST_CASE_FIXTURE(PoolFixture, "asio pool: co_await async_acquire waits for a connection given "
                               "back without blocking the io_context") {
  PoolOptions o = options("asio_pool", 1);
  Pool pool(watchdog, o);
  asio::io_context io;
  int ticks_while_waiting = 0;
  bool waiting = false;
  bool second_got_it = false;
  std::string error;

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Lease first = co_await async_acquire(pool, asio::use_awaitable);
        CHECK(select_one(first.get()));
        // A second coroutine wants one too: it must wait, and the loop must keep running.
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              waiting = true;
              Lease second = co_await async_acquire(pool, asio::use_awaitable);
              waiting = false;
              second_got_it = select_one(second.get(), &error);
            },
            asio::detached);
        asio::steady_timer timer(io);
        for (int i = 0; i < 5; ++i) {
          timer.expires_after(10ms);
          co_await timer.async_wait(asio::use_awaitable);
          if (waiting) ++ticks_while_waiting;
        }
        first.release();  // from the loop's thread: the waiting coroutine gets it
      },
      asio::detached);
  io.run();  // returns once both coroutines are done (the pending acquire keeps work)
  CHECK(ticks_while_waiting == 5);
  CHECK_MESSAGE(second_got_it, error);
}

TEST_CASE_FIXTURE(PoolFixture, "asio pool: an acquire timeout is thrown by co_await - and the "
                               "handler form runs on the executor bound to it") {
  PoolOptions o = options("asio_pool_timeout", 1);
  o.acquire_timeout = 100ms;
  Pool pool(watchdog, o);
  // The pool's one connection, held so that the awaited acquire times out. Opening it may take
  // longer than the 100 ms this pool waits (it did under AddressSanitizer beside the suite at two
  // tests per core): each timed-out acquire leaves it opening, and a later one gets it.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  Lease held = [&] {
    while (true) {
      try {
        return pool.acquire();
      } catch (const PoolTimeout&) {
        if (std::chrono::steady_clock::now() > deadline) throw;
      }
    }
  }();
  asio::io_context io;
  std::string message;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          (void)co_await async_acquire(pool, asio::use_awaitable);
        } catch (const PoolTimeout& timeout) {
          message = timeout.what();
        }
      },
      asio::detached);
  io.run();
  CHECK(message.find("pool 'asio_pool_timeout'") != std::string::npos);

  held.release();
  io.restart();
  std::optional<std::thread::id> ran_on;
  bool got = false;
  async_acquire(pool, asio::bind_executor(io, [&](std::exception_ptr error, Lease lease) {
                  ran_on = std::this_thread::get_id();
                  got = !error && select_one(lease.get());
                }));
  CHECK(!ran_on);  // never inline
  io.run();
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(got);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
