#pragma once

/// \file
/// A Patroni REST API base URL from the config file, checked by libcurl's own URL parser (the
/// one that will fetch it), so the config refuses what the fetch would trip over.

#include <string>
#include <string_view>

namespace pgwd::daemon {

/// `url` with any trailing `/` removed, ready for "/cluster" to be appended. Throws
/// std::invalid_argument saying what is wrong: not a URL, a scheme other than http or https, no
/// host, a query or fragment, or a user or password in it (which would end up in logs and
/// errors; a REST API that needs credentials for GET /cluster is not supported). The message
/// never quotes a URL that holds a password.
std::string checked_rest_url(std::string_view url);

}  // namespace pgwd::daemon
