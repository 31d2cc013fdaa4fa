#include "daemon/patroni/member_target.hpp"

#include <array>

#include "pg/conninfo.hpp"

namespace pgwd::daemon {

std::string member_target_name(std::string_view cluster, std::string_view member) {
  std::string name(cluster);
  name += '/';
  name += member;
  return name;
}

TargetOptions member_target(const PatroniCluster& cluster, const PatroniMember& member) {
  TargetOptions target = cluster.members;
  target.name = member_target_name(cluster.name(), member.name);
  // Parsed by libpq and written back whole: the password (from password_file) stays in it, and
  // the DSN is never shown but redacted.
  Conninfo dsn = Conninfo::parse(cluster.members.conninfo);
  dsn.set("host", member.host);
  dsn.set("port", std::to_string(member.port));
  target.conninfo = dsn.text();
  return target;
}

std::string member_address_key(const std::string& conninfo) {
  const Conninfo dsn = Conninfo::parse(conninfo);
  for (const char* key : std::array{"host", "hostaddr", "port"})
    if (dsn.get(key)) return key;
  return {};
}

}  // namespace pgwd::daemon
