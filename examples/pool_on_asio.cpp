// pgwd::Pool on an asio io_context: pgwd::async_acquire (pgwd/adapters/asio_pool.hpp) checks a
// connection out without blocking the io_context, with any completion token: a coroutine here,
// a handler bound to an executor below. Run: ./pool_on_asio 'host=... dbname=...'
// docs/lending-and-pool.md shows this file.
#include <libpq-fe.h>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdio>
#include <exception>
#include <pgwd/adapters/asio_pool.hpp>
#include <pgwd/pool.hpp>
#include <pgwd/watchdog_thread.hpp>

namespace {

void run_select_1(const pgwd::Lease& lease, const char* how) {
  PGresult* r = PQexec(lease.get(), "SELECT 1");
  std::printf("%s: %s\n", how, PQresStatus(PQresultStatus(r)));
  PQclear(r);
}

asio::awaitable<void> handle(pgwd::Pool& pool) {
  pgwd::Lease lease = co_await pgwd::async_acquire(pool, asio::use_awaitable);  // throws PoolTimeout
  run_select_1(lease, "co_await async_acquire");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONNINFO\n", argv[0]);
    return 2;
  }
  pgwd::WatchdogThread watchdog;
  pgwd::PoolOptions options;
  options.dsn = argv[1];
  options.name = "orders";
  pgwd::Pool pool(watchdog, options);
  asio::io_context io(1);

  asio::co_spawn(io, handle(pool), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  // completion-handler form: bind it to your executor (a plain lambda would run on asio's system one)
  pgwd::async_acquire(pool, asio::bind_executor(io, [](std::exception_ptr e, pgwd::Lease lease) {
    if (e) std::rethrow_exception(e);
    run_select_1(lease, "async_acquire with a handler");
  }));
  try {
    io.run();  // returns when both checkouts are done
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
