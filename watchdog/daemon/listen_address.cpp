#include "daemon/listen_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "daemon/config_error.hpp"
#include "daemon/yaml_values.hpp"

namespace pgwd::daemon {
namespace {

bool is_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != text.npos)
    return false;
  int port = 0;
  std::from_chars(text.data(), text.data() + text.size(), port);
  return port <= 65535;
}

bool is_host_name(std::string_view name) {
  constexpr std::size_t kMaxName = 253, kMaxLabel = 63;
  if (name.empty() || name.size() > kMaxName) return false;
  std::size_t label_start = 0;
  while (label_start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', label_start), name.size());
    const std::string_view label = name.substr(label_start, dot - label_start);
    if (label.empty() || label.size() > kMaxLabel || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    label_start = dot + 1;
  }
  return true;
}

bool is_listen_host(std::string_view host) {
  in_addr address{};
  // All digits and dots: an IPv4 address or a typo (10.0.0.256), never a name.
  if (!host.empty() && host.find_first_not_of("0123456789.") == host.npos)
    return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1;
  return is_host_name(host);
}

}  // namespace

void check_listen_address(std::string_view address) {
  if (address.starts_with('['))
    throw ConfigError("listen: " + quoted_value(address) +
                      ": IPv6 addresses are not supported (the HTTP port binds IPv4 only); "
                      "use an IPv4 address such as 127.0.0.1 or 0.0.0.0");
  const std::size_t colon = address.rfind(':');
  if (colon == address.npos || !is_listen_host(address.substr(0, colon)) ||
      !is_port(address.substr(colon + 1)))
    throw ConfigError("listen: bad address " + quoted_value(address) +
                      " (expected HOST:PORT, e.g. 127.0.0.1:10432)");
}

}  // namespace pgwd::daemon
