#include "target_settings.hpp"

#include <doctest/doctest.h>

#include "pg/conninfo.hpp"
#include "pg/secrets.hpp"
#include "pgwd/watchdog.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;

namespace {

TargetOptions target(std::string conninfo) {
  TargetOptions o;
  o.name = "primary";
  o.conninfo = std::move(conninfo);
  return o;
}

std::string error_of(const TargetOptions& o) {
  try {
    validate(o);
  } catch (const InvalidTarget& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("target settings: keepalive - user timeout and application name defaults are added") {
  const TargetSettings s = prepare_target(target("host=127.0.0.1 port=5432 dbname=app"));
  const Conninfo& c = s.link.conninfo;
  CHECK(c.get("keepalives") == "1");
  CHECK(c.get("keepalives_idle") == "5");
  CHECK(c.get("keepalives_interval") == "2");
  CHECK(c.get("keepalives_count") == "3");
  CHECK(c.get("tcp_user_timeout") == "11000");
  CHECK(c.get("fallback_application_name") == "pgwatchdog");
  CHECK(c.get("dbname") == "app");
}

TEST_CASE("target settings: what the conninfo sets wins over the watchdog's defaults") {
  TargetOptions o =
      target("host=127.0.0.1 keepalives_idle=30 tcp_user_timeout=0 application_name=svc");
  o.keepalives_interval = 1500ms;  // whole seconds for libpq: rounded up
  const TargetSettings s = prepare_target(o);
  CHECK(s.link.conninfo.get("keepalives_idle") == "30");
  CHECK(s.link.conninfo.get("tcp_user_timeout") == "0");
  CHECK(s.link.conninfo.get("keepalives_interval") == "2");
  CHECK(s.link.conninfo.get("application_name") == "svc");
}

TEST_CASE("target settings: only host names are resolved with evdns") {
  const auto first_resolve = [](const std::string& dsn) {
    return prepare_target(target(dsn)).link.hosts.at(0).resolve;
  };
  CHECK(first_resolve("host=db.example.internal") == "db.example.internal");
  CHECK(first_resolve("postgresql://localhost:5433/app") == "localhost");
  CHECK_FALSE(first_resolve("host=127.0.0.1"));
  CHECK_FALSE(first_resolve("host=::1"));
  CHECK_FALSE(first_resolve("host=/var/run/postgresql"));
  CHECK_FALSE(first_resolve("host=db.example.internal hostaddr=10.0.0.1"));
}

TEST_CASE(
    "target settings: several hosts are paired with their ports and taken out of the conninfo") {
  const TargetSettings s =
      prepare_target(target("host=a.internal,127.0.0.2,/tmp port=5433,5434,5435 dbname=app"));
  REQUIRE(s.link.hosts.size() == 3);
  CHECK(s.link.hosts[0].label() == "a.internal:5433");
  CHECK(s.link.hosts[0].resolve == "a.internal");
  CHECK(s.link.hosts[1].port == "5434");
  CHECK_FALSE(s.link.hosts[1].resolve);
  CHECK(s.link.hosts[2].host == "/tmp");
  CHECK_FALSE(s.link.conninfo.get("host"));
  CHECK_FALSE(s.link.conninfo.get("port"));
  CHECK(s.link.conninfo.get("dbname") == "app");
  // One port serves every host; the attempt's backstop covers every host's own deadline.
  const TargetSettings one_port = prepare_target(target("host=127.0.0.1,127.0.0.2 port=6000"));
  CHECK(one_port.link.hosts[1].port == "6000");
  CHECK(one_port.link.host_timeout == 5s);
  CHECK(one_port.lifecycle.connect_timeout == 11s);
}

TEST_CASE(
    "target settings: target_session_attrs is checked by the watchdog and not passed to libpq") {
  const TargetSettings s =
      prepare_target(target("host=127.0.0.1 target_session_attrs=prefer-standby"));
  CHECK(s.link.role == RoleRequirement::prefer_standby);
  CHECK(s.lifecycle.role == RoleRequirement::prefer_standby);
  CHECK_FALSE(s.link.conninfo.get("target_session_attrs"));
  CHECK(s.lifecycle.connect_timeout == 11s);  // a standby-only pass, then any server
}

TEST_CASE("target settings: LISTEN channels become quoted identifiers run after each connect") {
  TargetOptions o = target("host=127.0.0.1");
  o.listen_channels = {"jobs", "we\"ird"};
  CHECK(prepare_target(o).link.setup_sql == R"(LISTEN "jobs";LISTEN "we""ird";)");
}

TEST_CASE(
    "target settings: bad options are refused with a message naming the target and the problem") {
  CHECK(error_of(target("host=127.0.0.1")) == "");
  CHECK(error_of(target("host=a,b port=1,2,3")) == "target 'primary': 2 hosts but 3 ports");
  CHECK(error_of(target("host=a,b hostaddr=10.0.0.1")) ==
        "target 'primary': 2 hosts but 1 hostaddr values");
  CHECK(error_of(target("host=a target_session_attrs=leader")) ==
        "target 'primary': target_session_attrs must be any, read-write, read-only, primary, "
        "standby or prefer-standby");
  CHECK(error_of(target("service=mydb")).find("service= is not supported") != std::string::npos);
  CHECK(error_of(target("hots=x"))
            .find("target 'primary': malformed conninfo: invalid connection option \"hots\"") == 0);
  TargetOptions o = target("host=127.0.0.1");
  o.connections = 0;
  CHECK(error_of(o) == "target 'primary': connections must be at least 1 (got 0)");
  o = target("host=127.0.0.1");
  o.keepalives_idle = 500ms;
  CHECK(error_of(o) == "target 'primary': keepalives_idle must be at least 1s");
  o = target("host=127.0.0.1");
  o.backoff_max = 10ms;
  CHECK(error_of(o) == "target 'primary': backoff_max must not be less than backoff_initial");
  o = target("host=127.0.0.1");
  o.in_front_of = "primary";
  CHECK(error_of(o) == "target 'primary': in_front_of names the target itself");
  o.in_front_of = std::string(129, 'x');
  CHECK(error_of(o) ==
        "target 'primary': in_front_of is longer than a target name may be (128 bytes)");
  o.in_front_of = "direct";
  CHECK(error_of(o) == "");
  o = target("host=127.0.0.1");
  o.name = "";
  CHECK(error_of(o) == "a target needs a name");
}

TEST_CASE("secrets: a password never shows in the error for a malformed conninfo") {
  // libpq quotes the fragment it choked on; here that fragment is the password.
  const std::string dsn = "host=db user=app password=hunter2 oops";
  const std::string error = error_of(target(dsn));
  CHECK(error.find("malformed conninfo") != std::string::npos);
  CHECK(error.find("hunter2") == std::string::npos);
  const std::string quoted = "host=db password='s3cr et' sslmode";
  CHECK(error_of(target(quoted)).find("s3cr et") == std::string::npos);
  const std::string uri = "postgresql://app:p%40ss@db:5432/app?sslmode=bogus&password=other";
  CHECK(redact_secrets("p@ss p%40ss other", uri) == "*** *** ***");
}

TEST_CASE("secrets: redact_conninfo shows everything but the password") {
  // In libpq's keyword order, which PQconninfoParse returns.
  CHECK(redact_conninfo("host=db user=app password=hunter2") ==
        "user='app' password='***' host='db'");
  const std::string uri = redact_conninfo("postgresql://app:hunter2@db/app");
  CHECK(uri.find("hunter2") == std::string::npos);
  CHECK(uri.find("password='***'") != std::string::npos);
  CHECK(redact_conninfo("password=hunter2 broken").find("hunter2") == std::string::npos);
}

TEST_CASE("conninfo: set_default leaves what the user set and params are NULL-terminated") {
  Conninfo c = Conninfo::parse("host=db port=5433");
  c.set_default("port", "5432");
  c.set_default("dbname", "app");
  c.set("host", "db,db");
  const ConnectParams p = c.params();
  REQUIRE(p.keywords.size() == 4);
  CHECK(std::string(p.keywords[0]) == "host");
  CHECK(std::string(p.values[0]) == "db,db");
  CHECK(std::string(p.values[1]) == "5433");
  CHECK(std::string(p.keywords[2]) == "dbname");
  CHECK(p.keywords[3] == nullptr);
  CHECK(p.values[3] == nullptr);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
