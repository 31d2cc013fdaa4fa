// The loop conformance suite (loop_conformance.hpp) on pgwd::AsioLoop compiled against
// Boost.Asio (PGWD_ASIO_USE_BOOST): the same header, the other flavour.
#define PGWD_ASIO_USE_BOOST
#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <type_traits>

#include "pgwd/adapters/asio.hpp"
#include "unit/loop_conformance.hpp"
#include "unit/loop_conformance_asio_harness.hpp"

namespace {
using BoostAsioHarness = pgwd::testing::AsioHarness<boost::asio::io_context, pgwd::AsioLoop>;
static_assert(std::is_same_v<pgwd::AsioLoop::io_context, boost::asio::io_context>);
}  // namespace

PGWD_LOOP_CONFORMANCE_TESTS(BoostAsioHarness, "boost.asio")
