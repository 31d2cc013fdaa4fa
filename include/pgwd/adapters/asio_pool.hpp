#pragma once

/// \file
/// Asynchronous acquire of a pgwd::Pool for asio hosts, header-only, so that a service on an
/// io_context never blocks its loop waiting for a connection:
///
///     pgwd::Lease lease = co_await pgwd::async_acquire(pool, asio::use_awaitable);
///     pgwd::async_acquire(pool, asio::bind_executor(io, [](std::exception_ptr e, pgwd::Lease l) {
///       ...
///     }));
///
/// Any asio completion token works (use_awaitable, use_future, a handler, deferred). The
/// completion signature is void(std::exception_ptr, pgwd::Lease): with use_awaitable the
/// exception (PoolTimeout, PoolClosed) is thrown by co_await. The handler always runs on its
/// associated executor (a coroutine's: its io_context; a plain lambda's: asio's system executor,
/// so bind it with asio::bind_executor to run on your io_context), never inline
/// inside async_acquire and never on the thread that gave the connection back; the pool's own
/// waiter queue (Pool::acquire_async) does the waiting, no thread is parked. Outstanding work
/// keeps the io_context's run() from returning until the acquire completes.
///
/// Standalone asio (libasio-dev) by default; Boost.Asio when PGWD_ASIO_USE_BOOST is defined
/// (as for pgwd/adapters/asio.hpp).

#include <exception>
#include <memory>
#include <utility>

#include "pgwd/pool.hpp"

#if defined(PGWD_ASIO_USE_BOOST)
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
namespace pgwd::asio_pool_detail {
namespace net = ::boost::asio;
}
#else
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
namespace pgwd::asio_pool_detail {
namespace net = ::asio;
}
#endif

namespace pgwd {
namespace asio_pool_detail {

/// The handler and the work guard of its executor, shared because Pool::acquire_async takes a
/// copyable std::function and asio handlers are move-only.
template <typename Handler>
struct PendingAcquire {
  explicit PendingAcquire(Handler h)
      : handler(std::move(h)), work(net::make_work_guard(net::get_associated_executor(handler))) {}
  Handler handler;
  net::executor_work_guard<net::associated_executor_t<Handler>> work;
};

}  // namespace asio_pool_detail

/// Starts an acquire on `pool` and completes `token` with (exception_ptr, Lease). `pool` must
/// outlive the operation's start; the completion may come after the Pool is destroyed (with
/// PoolClosed).
template <typename CompletionToken>
auto async_acquire(Pool& pool, CompletionToken&& token) {
  namespace net = asio_pool_detail::net;
  return net::async_initiate<CompletionToken, void(std::exception_ptr, Lease)>(
      [&pool](auto handler) {
        using Handler = decltype(handler);
        auto pending =
            std::make_shared<asio_pool_detail::PendingAcquire<Handler>>(std::move(handler));
        pool.acquire_async([pending](Lease lease, std::exception_ptr error) {
          // On the pool's side (the caller, a releasing thread or the pool's thread): hand over
          // to the handler's executor at once, as Pool::acquire_async asks (never block here).
          auto executor = pending->work.get_executor();
          net::post(executor, [pending, error, lease = std::move(lease)]() mutable {
            auto completion = std::move(pending->handler);
            pending->work.reset();
            std::move(completion)(error, std::move(lease));
          });
        });
      },
      token);
}

}  // namespace pgwd
