#pragma once

/// What the integration tests' libpq guard (libpq_guard.cpp) saw, for tests that must know on
/// which thread the library ran libpq: e.g. that no PQconnectPoll step (where SCRAM computes)
/// ran on the watch loop's thread when connector threads are on.

#include <cstddef>
#include <thread>
#include <unordered_map>

namespace pgwd::testing {

/// PQconnectPoll calls made so far on thread `thread`, by the library or the harness.
std::size_t connect_polls_on(std::thread::id thread);
/// PQconnectPoll calls made so far, by thread: compare two of them to see which threads polled
/// in between (a thread id may be reused once its thread ended).
std::unordered_map<std::thread::id, std::size_t> connect_polls_by_thread();

}  // namespace pgwd::testing
