// Which server stands behind a pooled target: a restart and a failover told apart from a round
// trip that merely got another server connection.
#include "health/server_identity_watch.hpp"

#include <doctest/doctest.h>

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd;

namespace {

ServerInfo answered_by(const std::string& address, const std::string& started, int pid = 1) {
  ServerInfo server;
  server.backend_pid = pid;
  server.server_address = address;
  server.server_started = started;
  return server;
}

}  // namespace

TEST_CASE("server identity: the first server seen is no change, nor another backend of it") {
  ServerIdentityWatch watch;
  CHECK_FALSE(watch.saw(answered_by("10.0.0.1:5432", "1764963449.12")));
  // Transaction pooling: every round trip may get another backend of the same server.
  CHECK_FALSE(watch.saw(answered_by("10.0.0.1:5432", "1764963449.12", 2)));
  CHECK_FALSE(watch.saw(answered_by("10.0.0.1:5432", "1764963449.12", 3)));
}

TEST_CASE("server identity: a new start time on the same address is a restart, reported once") {
  ServerIdentityWatch watch;
  watch.saw(answered_by("10.0.0.1:5432", "1764963449.12"));
  CHECK(watch.saw(answered_by("10.0.0.1:5432", "1764963500.5")) == ServerChange::restart);
  CHECK(watch.previous().server_started == "1764963449.12");
  // The siblings' round trips that see the restarted server after it report nothing more.
  CHECK_FALSE(watch.saw(answered_by("10.0.0.1:5432", "1764963500.5", 7)));
}

TEST_CASE("server identity: another address is another server, whatever its start time") {
  ServerIdentityWatch watch;
  watch.saw(answered_by("10.0.0.1:5432", "1764963449.12"));
  CHECK(watch.saw(answered_by("10.0.0.2:5432", "1764963449.12")) == ServerChange::other_server);
  CHECK(watch.previous().server_address == "10.0.0.1:5432");
  CHECK(watch.saw(answered_by("local:5433", "1764963000")) == ServerChange::other_server);
  CHECK(watch.previous().server_address == "10.0.0.2:5432");
}

TEST_CASE("server identity: a server that told nothing of itself (a direct target) is ignored") {
  ServerIdentityWatch watch;
  CHECK_FALSE(watch.saw(answered_by("", "")));
  watch.saw(answered_by("10.0.0.1:5432", "1764963449.12"));
  CHECK_FALSE(watch.saw(answered_by("", "")));
  CHECK(watch.saw(answered_by("10.0.0.1:5432", "1764963500")) == ServerChange::restart);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
