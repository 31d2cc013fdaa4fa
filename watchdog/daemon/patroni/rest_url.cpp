#include "daemon/patroni/rest_url.hpp"

#include <stdexcept>

#include "daemon/file_reading.hpp"
#include "daemon/patroni/curl_handles.hpp"

namespace pgwd::daemon {
namespace {

bool has_part(CURLU* url, CURLUPart part) {
  char* text = nullptr;
  if (curl_url_get(url, part, &text, 0) != CURLUE_OK) return false;
  const CurlStringPtr owned(text);
  return text != nullptr && text[0] != '\0';
}

std::string part(CURLU* url, CURLUPart which) {
  char* text = nullptr;
  if (curl_url_get(url, which, &text, 0) != CURLUE_OK || text == nullptr) return {};
  const CurlStringPtr owned(text);
  return text;
}

}  // namespace

std::string checked_rest_url(std::string_view text) {
  const CurlUrlPtr url(curl_url());
  if (!url) throw std::invalid_argument("out of memory");
  const std::string shown = "'" + escape_control_characters(text) + "'";
  // libcurl would take "host:8008" as a scheme "host": ask for the scheme before it does.
  if (text.find("://") == std::string_view::npos) {
    if (text.find('@') != std::string_view::npos)
      throw std::invalid_argument("not a URL (not shown: it has an '@')");
    throw std::invalid_argument(shown + " is not a URL (write http://HOST:PORT)");
  }
  // NON_SUPPORT_SCHEME: an unknown scheme is then ours to name, not libcurl's to reject vaguely.
  if (curl_url_set(url.get(), CURLUPART_URL, std::string(text).c_str(), CURLU_NON_SUPPORT_SCHEME) !=
      CURLUE_OK) {
    // Parsing failed, so the user and password cannot be picked out: say nothing of the text
    // if it may hold them.
    if (text.find('@') != std::string_view::npos)
      throw std::invalid_argument("a URL that libcurl cannot parse (not shown: it has an '@')");
    throw std::invalid_argument(shown + " is not a URL (write http://HOST:PORT)");
  }
  if (has_part(url.get(), CURLUPART_USER) || has_part(url.get(), CURLUPART_PASSWORD))
    throw std::invalid_argument(
        "a URL with a user or password (not shown); Patroni's GET /cluster needs none");
  const std::string scheme = part(url.get(), CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https")
    throw std::invalid_argument(shown + ": the scheme must be http or https");
  if (!has_part(url.get(), CURLUPART_HOST)) throw std::invalid_argument(shown + " has no host");
  if (has_part(url.get(), CURLUPART_QUERY) || has_part(url.get(), CURLUPART_FRAGMENT))
    throw std::invalid_argument(shown + ": the base URL may not have a query or fragment");
  std::string base(text);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

}  // namespace pgwd::daemon
