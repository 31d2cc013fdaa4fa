#include <doctest/doctest.h>

#include <string>

#include "daemon/patroni/cluster_answer.hpp"
#include "daemon/patroni/membership_diff.hpp"
#include "support/error_message.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd::daemon;

namespace {

// What Patroni 3.0.2 (Debian 12) answers to GET /cluster for a healthy cluster of two.
constexpr std::string_view kTwoMembers = R"({"members": [
  {"name": "pg1", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:8008/patroni",
   "host": "127.0.0.1", "port": 5432, "timeline": 1},
  {"name": "pg2", "role": "replica", "state": "streaming", "api_url": "http://127.0.0.1:8009/patroni",
   "host": "127.0.0.2", "port": 5433, "timeline": 1, "lag": 0}
], "scope": "demo"})";

std::string error_of(std::string_view body) {
  return pgwd::testing::message_of<MalformedAnswer>([&] { (void)parse_cluster_answer(body); });
}

PatroniMember member(std::string name, std::string host, int port, std::string role = "replica") {
  return PatroniMember{std::move(name), std::move(host), port, std::move(role)};
}

}  // namespace

TEST_CASE(
    "patroni answer: a healthy cluster's members, their addresses and roles, and its leader") {
  const ClusterAnswer answer = parse_cluster_answer(kTwoMembers);
  REQUIRE(answer.members.size() == 2);
  CHECK(answer.members[0] == member("pg1", "127.0.0.1", 5432, "leader"));
  CHECK(answer.members[1] == member("pg2", "127.0.0.2", 5433, "replica"));
  CHECK(answer.leader == "pg1");
  CHECK(answer.skipped.empty());
}

TEST_CASE("patroni answer: older Patroni's master and a port as a string are read too") {
  const ClusterAnswer answer = parse_cluster_answer(
      R"({"members":[{"name":"a","role":"master","host":"db1","port":"5432"}]})");
  REQUIRE(answer.members.size() == 1);
  CHECK(answer.members[0].port == 5432);
  CHECK(answer.leader == "a");
}

TEST_CASE(
    "patroni answer: a standby cluster's leader is no leader of ours, and no leader is none") {
  CHECK(parse_cluster_answer(
            R"({"members":[{"name":"a","role":"standby_leader","host":"h","port":1}]})")
            .leader.empty());
  CHECK(parse_cluster_answer(R"({"members":[{"name":"a","role":"replica","host":"h","port":1}]})")
            .leader.empty());
  CHECK(parse_cluster_answer(R"({"members":[]})").members.empty());
}

TEST_CASE("patroni answer: what is not a cluster is refused with a message that says why") {
  CHECK(error_of("<html>502 Bad Gateway</html>") ==
        "the answer is not JSON (28 bytes, starting '<html>502 Bad Ga')");
  CHECK(error_of("") == "the answer is not JSON (0 bytes, starting '')");
  CHECK(error_of(R"({"members": [)") ==
        "the answer is not JSON (13 bytes, starting '{\"members\": [')");
  CHECK(error_of("[1,2]") == "the answer is JSON but not an object (a list)");
  CHECK(error_of(R"({"state":"running","role":"primary"})") ==
        "the answer has no \"members\" (is this Patroni's /cluster?)");
  CHECK(error_of(R"({"members":{"a":1}})") == "\"members\" is an object, not a list");
}

TEST_CASE("patroni answer: a bad byte in a refused answer is escaped in the message") {
  CHECK(error_of("\x01\nx") == "the answer is not JSON (3 bytes, starting '\\x01\\x0ax')");
}

TEST_CASE("patroni answer: members missing a name, host or port are skipped, each with why") {
  const ClusterAnswer answer = parse_cluster_answer(R"({"members":[
    {"role":"replica","host":"h","port":1},
    {"name":"starting","role":"replica","state":"starting"},
    {"name":"noport","host":"h"},
    {"name":"badport","host":"h","port":70000},
    {"name":"negative","host":"h","port":-1},
    "pg9",
    {"name":"ok","host":"h","port":5432,"role":"leader"},
    {"name":"ok","host":"other","port":5433}
  ]})");
  REQUIRE(answer.members.size() == 1);
  CHECK(answer.members[0].name == "ok");
  CHECK(answer.members[0].host == "h");
  CHECK(answer.leader == "ok");
  CHECK(answer.skipped ==
        std::vector<std::string>{
            "members[0] has no name", "member 'starting' has no host and port to connect to",
            "member 'noport' has no host and port to connect to",
            "member 'badport' has no host and port to connect to",
            "member 'negative' has no host and port to connect to", "members[5] is not an object",
            "member 'ok' is listed twice; the first is watched"});
}

TEST_CASE("patroni answer: fields of the wrong type count as missing, never as a crash") {
  const ClusterAnswer answer = parse_cluster_answer(
      R"({"members":[{"name":7,"host":"h","port":1},{"name":"a","host":["h"],"port":1},
                     {"name":"b","host":"h","port":1.5},{"name":"c","host":"h","port":1,"role":3}]})");
  REQUIRE(answer.members.size() == 1);
  CHECK(answer.members[0] == member("c", "h", 1, ""));
  CHECK(answer.skipped.size() == 3);
}

TEST_CASE("patroni answer: at most kMaxMembers members are read") {
  std::string body = R"({"members":[)";
  for (std::size_t i = 0; i < kMaxMembers + 5; ++i)
    body += (i ? "," : "") + std::string(R"({"name":"m)") + std::to_string(i) +
            R"(","host":"h","port":1})";
  body += "]}";
  const ClusterAnswer answer = parse_cluster_answer(body);
  CHECK(answer.members.size() == kMaxMembers);
  REQUIRE(answer.skipped.size() == 1);
  CHECK(answer.skipped[0] == "member 'm100' and the members after it: more than 100 members");
}

TEST_CASE("membership diff: nothing changed, or only roles, is no change") {
  const std::vector<PatroniMember> watched = {member("a", "h1", 1, "leader"), member("b", "h2", 1)};
  CHECK(diff_members(watched, watched).empty());
  CHECK(diff_members(watched, {member("a", "h1", 1), member("b", "h2", 1, "leader")}).empty());
}

TEST_CASE("membership diff: a member added, a member removed") {
  const MembershipChange change = diff_members({member("a", "h1", 1), member("b", "h2", 1)},
                                               {member("a", "h1", 1), member("c", "h3", 1)});
  CHECK(change.removed == std::vector<std::string>{"b"});
  REQUIRE(change.added.size() == 1);
  CHECK(change.added[0] == member("c", "h3", 1));
  CHECK(change.moved.empty());
}

TEST_CASE("membership diff: a member renamed is the old name removed and the new one added") {
  const MembershipChange change =
      diff_members({member("pg1", "h1", 5432)}, {member("node-1", "h1", 5432)});
  CHECK(change.removed == std::vector<std::string>{"pg1"});
  REQUIRE(change.added.size() == 1);
  CHECK(change.added[0].name == "node-1");
}

TEST_CASE("membership diff: a member at another host or port is moved") {
  const MembershipChange change = diff_members({member("a", "h1", 1), member("b", "h2", 1)},
                                               {member("a", "h9", 1), member("b", "h2", 2)});
  CHECK(change.removed.empty());
  CHECK(change.added.empty());
  REQUIRE(change.moved.size() == 2);
  CHECK(change.moved[0] == member("a", "h9", 1));
  CHECK(change.moved[1] == member("b", "h2", 2));
}

TEST_CASE("membership diff: from nothing, and to nothing") {
  CHECK(diff_members({}, {member("a", "h", 1)}).added.size() == 1);
  CHECK(diff_members({member("a", "h", 1)}, {}).removed == std::vector<std::string>{"a"});
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
