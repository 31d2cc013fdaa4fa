#include "pg/host_list.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>

#include "pg/handles.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd {
namespace {

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> items;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = list.find(',', start);
    items.push_back(
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

bool is_ip_literal(const std::string& host) {
  in6_addr buffer{};
  return inet_pton(AF_INET, host.c_str(), &buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buffer) == 1;
}

// libpq's environment defaults (PGHOST, ...) for what the conninfo does not set.
std::optional<std::string> environment_default(const char* keyword) {
  const ConninfoOptionsPtr defaults(PQconndefaults());
  for (const PQconninfoOption* o = defaults.get(); o && o->keyword; ++o)
    if (std::string_view(o->keyword) == keyword && o->val && *o->val) return std::string(o->val);
  return std::nullopt;
}

std::vector<std::string> take_list(Conninfo& conninfo, const char* key) {
  std::optional<std::string> value = conninfo.get(key);
  conninfo.erase(key);
  if (!value) value = environment_default(key);
  return value ? split(*value) : std::vector<std::string>{};
}

}  // namespace

std::string HostEntry::label() const {
  const std::string& where = !host.empty()       ? host
                             : !hostaddr.empty() ? hostaddr
                                                 : std::string("default socket");
  return port.empty() ? where : where + ":" + port;
}

std::vector<HostEntry> take_hosts(Conninfo& conninfo) {
  const auto hosts = take_list(conninfo, "host");
  const auto addresses = take_list(conninfo, "hostaddr");
  const auto ports = take_list(conninfo, "port");
  if (!hosts.empty() && !addresses.empty() && hosts.size() != addresses.size())
    throw InvalidTarget(
        fmt::format("{} hosts but {} hostaddr values", hosts.size(), addresses.size()));
  const std::size_t count = std::max({hosts.size(), addresses.size(), std::size_t{1}});
  if (ports.size() > 1 && ports.size() != count)
    throw InvalidTarget(fmt::format("{} hosts but {} ports", count, ports.size()));

  std::vector<HostEntry> entries(count);
  for (std::size_t i = 0; i < count; ++i) {
    HostEntry& e = entries[i];
    if (i < hosts.size()) e.host = hosts[i];
    if (i < addresses.size()) e.hostaddr = addresses[i];
    if (!ports.empty()) e.port = ports.size() == 1 ? ports[0] : ports[i];
    // Only a real name needs evdns: not a socket directory, an abstract socket, or an IP literal.
    if (e.hostaddr.empty() && !e.host.empty() && e.host.front() != '/' && e.host.front() != '@' &&
        !is_ip_literal(e.host))
      e.resolve = e.host;
  }
  return entries;
}

}  // namespace pgwd
