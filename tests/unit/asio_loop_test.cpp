// The loop conformance suite (loop_conformance.hpp) on pgwd::AsioLoop over standalone asio, and
// what is particular to that adapter.
#include <doctest/doctest.h>

#include <asio/executor_work_guard.hpp>
#include <stdexcept>
#include <string>

#include "pgwd/adapters/asio.hpp"
#include "unit/loop_conformance.hpp"
#include "unit/loop_conformance_asio_harness.hpp"

namespace {
using StandaloneAsioHarness = pgwd::testing::AsioHarness<asio::io_context, pgwd::AsioLoop>;
}  // namespace

PGWD_LOOP_CONFORMANCE_TESTS(StandaloneAsioHarness, "asio")

TEST_CASE("asio loop: nameservers cannot be honoured and make_resolver says so") {
  StandaloneAsioHarness h;
  try {
    (void)h.loop().make_resolver({"127.0.0.1:5353"});
    FAIL("make_resolver accepted nameservers it cannot use");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("nameservers") != std::string::npos);
    CHECK(what.find("AsioLoop") != std::string::npos);
    CHECK(what.find("getaddrinfo") != std::string::npos);
  }
  CHECK_NOTHROW((void)h.loop().make_resolver({}));
}

TEST_CASE("asio loop: in_loop_thread is false on a thread that is not running the io_context") {
  StandaloneAsioHarness h;
  CHECK_FALSE(h.loop().in_loop_thread());  // asio knows the loop thread only while run() runs
}
