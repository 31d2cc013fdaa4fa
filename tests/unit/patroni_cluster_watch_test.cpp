#include <doctest/doctest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/patroni/cluster_watch.hpp"
#include "metrics/store.hpp"
#include "support/fake_loop.hpp"
#include "support/metrics_reader.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::daemon;
using pgwd::testing::FakeLoop;
using pgwd::testing::metric_value;

namespace {

/// GETs answered by the test, in the order asked; a cancelled one is marked so.
class ScriptedSource final : public AnswerSource {
 public:
  struct Request {
    std::string url;
    std::chrono::milliseconds timeout;
    Done done;
    bool cancelled = false;
  };
  class Pending final : public PendingFetch {
   public:
    explicit Pending(std::shared_ptr<Request> request) : request_(std::move(request)) {}
    ~Pending() override { request_->cancelled = true; }

   private:
    std::shared_ptr<Request> request_;
  };

  std::unique_ptr<PendingFetch> get(const std::string& url, std::chrono::milliseconds timeout,
                                    Done done) override {
    auto request = std::make_shared<Request>(Request{url, timeout, std::move(done)});
    requests.push_back(request);
    return std::make_unique<Pending>(request);
  }

  /// Answers the oldest request not answered yet, as the loop would (never inside get()).
  void respond(FetchResult result) {
    REQUIRE_FALSE(requests.empty());
    const std::shared_ptr<Request> request = requests.front();
    requests.pop_front();
    REQUIRE_FALSE(request->cancelled);
    asked.push_back(request->url);
    request->done(std::move(result));
  }
  void ok(std::string body) { respond(FetchResult{{}, 200, std::move(body)}); }

  std::deque<std::shared_ptr<Request>> requests;
  std::vector<std::string> asked;  // URLs of the answered requests, in order
};

/// The watchdog's side, recorded; a member named in `refuse` is refused as add_target would.
class RecordingTargets final : public MemberTargets {
 public:
  void add(const TargetOptions& target) override {
    if (refuse.contains(target.name)) throw std::invalid_argument("refused: " + target.name);
    if (targets.contains(target.name)) throw std::invalid_argument("duplicate " + target.name);
    targets.emplace(target.name, target);
    ++adds;
  }
  void remove(const std::vector<std::string>& names) override {
    for (const std::string& name : names) targets.erase(name);
    removals.push_back(names);
  }
  bool answers_as_primary(const std::string& name) const override {
    return primaries.contains(name);
  }

  std::map<std::string, TargetOptions> targets;
  std::set<std::string> refuse;
  std::set<std::string> primaries;
  std::vector<std::vector<std::string>> removals;
  int adds = 0;
};

std::string members_json(const std::vector<std::string>& members, const std::string& leader) {
  std::string body = R"({"scope":"demo","members":[)";
  int port = 5432;
  for (const std::string& name : members) {
    if (port != 5432) body += ",";
    body += R"({"name":")" + name + R"(","role":")" + (name == leader ? "leader" : "replica") +
            R"(","host":"127.0.0.1","port":)" + std::to_string(port++) + "}";
  }
  return body + "]}";
}

PatroniCluster cluster(std::vector<std::string> urls = {"http://rest1:8008"}) {
  PatroniCluster c;
  c.members.name = "demo";
  c.members.conninfo = "user=watchdog dbname=postgres password=secret";
  c.members.connections = 2;
  c.rest_api = std::move(urls);
  c.discovery_interval = 10s;
  return c;
}

struct Fixture {
  FakeLoop loop;
  ScriptedSource source;
  RecordingTargets targets;
  std::shared_ptr<SeriesStore> metrics = make_series_store();
  std::ostringstream log_text;
  std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(log_text));
  std::unique_ptr<ClusterWatch> watch;

  explicit Fixture(PatroniCluster c = cluster()) {
    log->set_level(spdlog::level::debug);
    log->set_pattern("%l %v");
    watch = std::make_unique<ClusterWatch>(std::move(c), loop, source, targets, Store::of(*metrics),
                                           log);
  }
  double value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    return metric_value(metrics, name, labels);
  }
  double members() const { return value("pgwatchdog_patroni_members", {{"cluster", "demo"}}); }
  double up() const { return value("pgwatchdog_patroni_discovery_up", {{"cluster", "demo"}}); }
  double errors(const std::string& reason) const {
    return value("pgwatchdog_patroni_discovery_errors_total",
                 {{"cluster", "demo"}, {"reason", reason}});
  }
  double leader(const std::string& member) const {
    return value("pgwatchdog_patroni_leader", {{"cluster", "demo"}, {"member", member}});
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, target] : targets.targets) out.push_back(name);
    return out;
  }
  std::size_t count_in_log(const std::string& text) const {
    std::size_t n = 0;
    for (std::size_t at = log_text.str().find(text); at != std::string::npos;
         at = log_text.str().find(text, at + 1))
      ++n;
    return n;
  }
};

}  // namespace

TEST_CASE("patroni watch: nothing is asked inside the constructor, the first reading at once") {
  Fixture f;
  CHECK(f.source.requests.empty());
  CHECK(f.targets.adds == 0);
  f.loop.advance(0ms);
  REQUIRE(f.source.requests.size() == 1);
  CHECK(f.source.requests[0]->url == "http://rest1:8008/cluster");
  CHECK(f.source.requests[0]->timeout == 5s);  // min(discovery_interval, kMaxRequestTime)
  // Before any answer the cluster's series exist, with zeros.
  CHECK(f.members() == 0);
  CHECK(f.up() == 0);
  CHECK(f.errors("malformed") == 0);
}

TEST_CASE("patroni watch: every member becomes a target with the cluster's settings") {
  Fixture f;
  f.loop.advance(0ms);
  f.source.ok(members_json({"pg1", "pg2"}, "pg1"));
  CHECK(f.names() == std::vector<std::string>{"demo/pg1", "demo/pg2"});
  const TargetOptions& pg2 = f.targets.targets.at("demo/pg2");
  CHECK(pg2.connections == 2);
  CHECK(pg2.conninfo.find("host='127.0.0.1'") != std::string::npos);
  CHECK(pg2.conninfo.find("port='5433'") != std::string::npos);
  CHECK(pg2.conninfo.find("user='watchdog'") != std::string::npos);
  CHECK(pg2.conninfo.find("password='secret'") != std::string::npos);
  CHECK(f.members() == 2);
  CHECK(f.up() == 1);
  CHECK(f.leader("pg1") == 1);
  CHECK(f.count_in_log("info Patroni cluster 'demo': watching member 'pg2' at 127.0.0.1:5433 "
                       "(replica)") == 1);
  // The password is in the target's DSN, which the watchdog redacts; never in the log.
  CHECK(f.log_text.str().find("secret") == std::string::npos);
  const auto targets = f.watch->member_targets();
  REQUIRE(targets.size() == 2);
  CHECK(targets[0].name == "demo/pg1");
}

TEST_CASE("patroni watch: a member removed, added or renamed is followed at the next reading") {
  Fixture f;
  f.loop.advance(0ms);
  f.source.ok(members_json({"pg1", "pg2", "pg3"}, "pg1"));
  CHECK(f.names().size() == 3);

  SUBCASE("removed: its target goes within one discovery period") {
    f.loop.advance(9999ms);
    CHECK(f.source.requests.empty());  // not before the period is over
    f.loop.advance(1ms);
    f.source.ok(members_json({"pg1", "pg3"}, "pg1"));
    CHECK(f.names() == std::vector<std::string>{"demo/pg1", "demo/pg3"});
    CHECK(f.members() == 2);
    CHECK(f.count_in_log("member 'pg2' is no longer listed") == 1);
  }
  SUBCASE("added: its target starts") {
    f.loop.advance(10s);
    f.source.ok(members_json({"pg1", "pg2", "pg3", "pg4"}, "pg1"));
    CHECK(f.names().size() == 4);
    CHECK(f.targets.targets.contains("demo/pg4"));
    CHECK(f.targets.removals.empty());  // the others untouched
  }
  SUBCASE("renamed: the old name's target goes, the new name's starts") {
    f.loop.advance(10s);
    f.source.ok(R"({"members":[
      {"name":"pg1","role":"leader","host":"127.0.0.1","port":5432},
      {"name":"node-2","role":"replica","host":"127.0.0.1","port":5433},
      {"name":"pg3","role":"replica","host":"127.0.0.1","port":5434}]})");
    CHECK(f.names() == std::vector<std::string>{"demo/node-2", "demo/pg1", "demo/pg3"});
    REQUIRE(f.targets.removals.size() == 1);
    CHECK(f.targets.removals[0] == std::vector<std::string>{"demo/pg2"});
  }
  SUBCASE("moved: the target restarts at the new address") {
    f.loop.advance(10s);
    f.source.ok(R"({"members":[
      {"name":"pg1","role":"leader","host":"127.0.0.1","port":5432},
      {"name":"pg2","role":"replica","host":"10.0.0.2","port":5433},
      {"name":"pg3","role":"replica","host":"127.0.0.1","port":5434}]})");
    CHECK(f.targets.removals.at(0) == std::vector<std::string>{"demo/pg2"});
    CHECK(f.targets.targets.at("demo/pg2").conninfo.find("host='10.0.0.2'") != std::string::npos);
  }
  SUBCASE("a failover: the leader's series follows Patroni") {
    f.loop.advance(10s);
    f.source.ok(members_json({"pg1", "pg2", "pg3"}, ""));
    CHECK(f.leader("pg1") == -1);  // no leader listed: no series
    f.loop.advance(10s);
    f.source.ok(members_json({"pg1", "pg2", "pg3"}, "pg2"));
    CHECK(f.leader("pg2") == 1);
    CHECK(f.leader("pg1") == -1);
    CHECK(f.count_in_log("leader is '") == 2);  // at start, and after none
    CHECK(f.targets.removals.empty());          // a role change restarts nothing
  }
}

TEST_CASE(
    "patroni watch: an unreachable endpoint is skipped for the next one in the same reading") {
  Fixture f(cluster({"http://rest1:8008", "http://rest2:8008"}));
  f.loop.advance(0ms);
  f.source.respond(FetchResult{"Connection refused", 0, {}});
  REQUIRE(f.source.requests.size() == 1);  // the second endpoint, at once
  f.source.ok(members_json({"pg1"}, "pg1"));
  CHECK(f.source.asked ==
        std::vector<std::string>{"http://rest1:8008/cluster", "http://rest2:8008/cluster"});
  CHECK(f.errors("unreachable") == 1);
  CHECK(f.up() == 1);
  CHECK(f.members() == 1);
  CHECK(f.count_in_log("error Patroni cluster 'demo': cannot read the members from "
                       "http://rest1:8008/cluster: unreachable: Connection refused") == 1);
  // The same failure at the next reading is counted, not logged again as an error.
  f.loop.advance(10s);
  f.source.respond(FetchResult{"Connection refused", 0, {}});
  f.source.ok(members_json({"pg1"}, "pg1"));
  CHECK(f.errors("unreachable") == 2);
  CHECK(f.count_in_log("error Patroni cluster 'demo': cannot read") == 1);
}

TEST_CASE("patroni watch: a failed reading changes no target and says why, by reason") {
  Fixture f;
  f.loop.advance(0ms);
  f.source.ok(members_json({"pg1", "pg2"}, "pg1"));
  REQUIRE(f.names().size() == 2);

  f.loop.advance(10s);
  f.source.ok("<html>oops</html>");
  CHECK(f.names().size() == 2);
  CHECK(f.up() == 0);
  CHECK(f.errors("malformed") == 1);
  CHECK(f.count_in_log("malformed: the answer is not JSON") == 1);

  f.loop.advance(10s);
  f.source.respond(FetchResult{{}, 503, R"({"state":"stopped"})"});
  CHECK(f.errors("http_status") == 1);
  CHECK(f.count_in_log("http_status: HTTP status 503 (expected 200)") == 1);

  f.loop.advance(10s);
  f.source.respond(FetchResult{"no answer within 5000 ms", 0, {}});
  CHECK(f.errors("unreachable") == 1);
  CHECK(f.names().size() == 2);
  CHECK(f.members() == 2);
  CHECK(f.targets.removals.empty());

  f.loop.advance(10s);
  f.source.ok(members_json({"pg1"}, "pg1"));
  CHECK(f.up() == 1);
  CHECK(f.names() == std::vector<std::string>{"demo/pg1"});
  CHECK(f.count_in_log("members read again from http://rest1:8008") == 1);
}

TEST_CASE("patroni watch: a source that cannot even start a GET is an unreachable endpoint") {
  class ThrowingSource final : public AnswerSource {
   public:
    std::unique_ptr<PendingFetch> get(const std::string&, std::chrono::milliseconds,
                                      Done) override {
      throw std::runtime_error("libcurl: curl_multi_add_handle failed");
    }
  } source;
  FakeLoop loop;
  RecordingTargets targets;
  auto metrics = make_series_store();
  auto log = std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_st>());
  ClusterWatch watch(cluster(), loop, source, targets, Store::of(*metrics), log);
  loop.advance(0ms);
  CHECK(metric_value(metrics, "pgwatchdog_patroni_discovery_errors_total",
                     {{"cluster", "demo"}, {"reason", "unreachable"}}) == 1);
  loop.advance(10s);  // and it keeps trying
  CHECK(metric_value(metrics, "pgwatchdog_patroni_discovery_errors_total",
                     {{"cluster", "demo"}, {"reason", "unreachable"}}) == 2);
}

TEST_CASE("patroni watch: a member the watchdog refuses is counted and told once, the others run") {
  Fixture f;
  f.targets.refuse.insert("demo/pg2");
  f.loop.advance(0ms);
  f.source.ok(members_json({"pg1", "pg2", "pg3"}, "pg1"));
  CHECK(f.names() == std::vector<std::string>{"demo/pg1", "demo/pg3"});
  CHECK(f.members() == 2);
  CHECK(f.errors("member_refused") == 1);
  f.loop.advance(10s);
  f.source.ok(members_json({"pg1", "pg2", "pg3"}, "pg1"));
  CHECK(f.errors("member_refused") == 2);
  CHECK(f.count_in_log("error Patroni cluster 'demo': member 'pg2' cannot be watched") == 1);
  f.targets.refuse.clear();
  f.loop.advance(10s);
  f.source.ok(members_json({"pg1", "pg2", "pg3"}, "pg1"));
  CHECK(f.members() == 3);
}

TEST_CASE("patroni watch: members skipped by the answer are logged once while they stay so") {
  Fixture f;
  const std::string body =
      R"({"members":[{"name":"pg1","host":"h","port":1},{"name":"pg2","state":"starting"}]})";
  f.loop.advance(0ms);
  f.source.ok(body);
  f.loop.advance(10s);
  f.source.ok(body);
  CHECK(f.count_in_log("member 'pg2' has no host and port to connect to: not watched") == 1);
  CHECK(f.members() == 1);
}

TEST_CASE("patroni watch: two members answering as primary at once raise the alarm") {
  Fixture f;
  f.loop.advance(0ms);
  f.source.ok(members_json({"pg1", "pg2"}, "pg1"));
  f.targets.primaries = {"demo/pg1"};
  f.loop.advance(ClusterWatch::kRoleCheckInterval);
  CHECK(f.value("pgwatchdog_patroni_primaries", {{"cluster", "demo"}}) == 1);
  f.targets.primaries = {"demo/pg1", "demo/pg2"};
  f.loop.advance(ClusterWatch::kRoleCheckInterval);
  CHECK(f.value("pgwatchdog_patroni_primaries", {{"cluster", "demo"}}) == 2);
  CHECK(f.count_in_log("error Patroni cluster 'demo': 2 members answer as primary at once: "
                       "pg1, pg2 (Patroni's leader: 'pg1')") == 1);
  f.loop.advance(ClusterWatch::kRoleCheckInterval * 3);  // told once while it lasts
  CHECK(f.count_in_log("members answer as primary at once") == 1);
  f.targets.primaries = {"demo/pg2"};
  f.loop.advance(ClusterWatch::kRoleCheckInterval);
  CHECK(f.value("pgwatchdog_patroni_primaries", {{"cluster", "demo"}}) == 1);
  CHECK(f.count_in_log("info Patroni cluster 'demo': 1 member(s) answer as primary now") == 1);
}

TEST_CASE("patroni watch: destroyed, it cancels its GET and removes every member target") {
  Fixture f;
  f.loop.advance(0ms);
  f.source.ok(members_json({"pg1", "pg2"}, "pg1"));
  f.loop.advance(10s);
  REQUIRE(f.source.requests.size() == 1);
  const auto in_flight = f.source.requests.front();
  f.watch.reset();
  CHECK(in_flight->cancelled);
  CHECK(f.targets.targets.empty());
  CHECK(f.value("pgwatchdog_patroni_members", {{"cluster", "demo"}}) == -1);
  CHECK(f.leader("pg1") == -1);
  CHECK(f.loop.armed_timers() == 0);
}

TEST_CASE("patroni watch: a reading that takes long starts the next one a period after its own") {
  Fixture f;
  f.loop.advance(0ms);
  f.loop.advance(4s);  // the answer takes 4 s
  f.source.ok(members_json({"pg1"}, "pg1"));
  f.loop.advance(5999ms);
  CHECK(f.source.requests.empty());
  f.loop.advance(1ms);
  CHECK(f.source.requests.size() == 1);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
