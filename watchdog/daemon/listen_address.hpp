#pragma once

#include <string_view>

namespace pgwd::daemon {

/// "HOST:PORT" as `listen` (and the CLI's --listen) takes it: HOST is an IPv4 address, a host
/// name; PORT is 0..65535 (0: any free port). Throws
/// ConfigError("listen: bad address '...' (expected HOST:PORT, e.g. 127.0.0.1:10432)"). A
/// bracketed IPv6 address is refused with its own message: the HTTP port binds IPv4 only
/// (http_server.cpp).
void check_listen_address(std::string_view address);

}  // namespace pgwd::daemon
