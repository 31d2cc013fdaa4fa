#include "health/role_requirement.hpp"

#include <doctest/doctest.h>

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd;

namespace {

ServerInfo server(const char* in_hot_standby, const char* read_only) {
  ServerInfo s;
  s.in_hot_standby = in_hot_standby;
  s.default_transaction_read_only = read_only;
  return s;
}

}  // namespace

TEST_CASE("role requirement: libpq's target_session_attrs rules") {
  const ServerInfo primary = server("off", "off");
  const ServerInfo read_only_primary = server("off", "on");
  const ServerInfo standby = server("on", "on");
  CHECK_FALSE(role_mismatch(RoleRequirement::any, standby));
  CHECK_FALSE(role_mismatch(RoleRequirement::prefer_standby, primary));
  CHECK_FALSE(role_mismatch(RoleRequirement::read_write, primary));
  CHECK(role_mismatch(RoleRequirement::read_write, read_only_primary));
  CHECK(role_mismatch(RoleRequirement::read_write, standby));
  CHECK_FALSE(role_mismatch(RoleRequirement::read_only, read_only_primary));
  CHECK_FALSE(role_mismatch(RoleRequirement::read_only, standby));
  CHECK(role_mismatch(RoleRequirement::read_only, primary));
  CHECK_FALSE(role_mismatch(RoleRequirement::primary, read_only_primary));
  CHECK(role_mismatch(RoleRequirement::primary, standby));
  CHECK_FALSE(role_mismatch(RoleRequirement::standby, standby));
  CHECK(role_mismatch(RoleRequirement::standby, primary));
  CHECK(*role_mismatch(RoleRequirement::primary, standby) ==
        "server is a standby (in_hot_standby=on, default_transaction_read_only=on) but "
        "target_session_attrs=primary");
}

TEST_CASE("role requirement: a server that does not report its role satisfies only any") {
  const ServerInfo old_server;  // PostgreSQL 13 and older report no in_hot_standby
  CHECK_FALSE(role_mismatch(RoleRequirement::any, old_server));
  CHECK(role_mismatch(RoleRequirement::primary, old_server)->find("needs PostgreSQL 14") !=
        std::string::npos);
}

TEST_CASE("role requirement: names round-trip and unknown names are refused") {
  for (const char* name :
       {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"})
    CHECK(to_string(*parse_role_requirement(name)) == name);
  CHECK_FALSE(parse_role_requirement("leader"));
  CHECK_FALSE(parse_role_requirement("Primary"));
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
