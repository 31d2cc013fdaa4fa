#include "daemon/web_config.hpp"

#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "daemon/config.hpp"
#include "os/unique_fd.hpp"

namespace pgwd::daemon {
namespace {

// A web config, a certificate or a CA bundle is a few KiB; anything far larger is a mistake.
constexpr std::size_t kMaxWebFileBytes = 1024 * 1024;

std::string printable_path(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

// Only a regular file of bounded size is read, opened non-blocking: a FIFO would otherwise make
// a SIGHUP wait on the loop for a writer.
std::string read_small_file(const std::string& path, std::string_view what) {
  const auto fail = [&](const std::string& why) -> ConfigError {
    return ConfigError(std::string(what) + ": cannot read '" + printable_path(path) + "': " + why);
  };
  const UniqueFd file(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (file.get() < 0) throw fail(std::strerror(errno));
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) throw fail(std::strerror(errno));
  if (!S_ISREG(status.st_mode)) throw fail("not a regular file");
  std::string text(kMaxWebFileBytes + 1, '\0');
  std::size_t length = 0;
  while (length < text.size()) {
    const ssize_t got = ::read(file.get(), text.data() + length, text.size() - length);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw fail(std::strerror(errno));
    if (got == 0) break;
    length += static_cast<std::size_t>(got);
  }
  if (length > kMaxWebFileBytes) throw fail("larger than 1 MiB");
  text.resize(length);
  return text;
}

class Reporter {
 public:
  explicit Reporter(std::string_view origin) : origin_(printable_path(origin)) {}
  [[noreturn]] void fail(const YAML::Node& at, const std::string& problem) const {
    fail(std::max(at.Mark().line, 0) + 1, problem);
  }
  [[noreturn]] void fail(int line, const std::string& problem) const {
    throw ConfigError(origin_ + ":" + std::to_string(line) + ": " + problem);
  }

 private:
  std::string origin_;
};

// exporter-toolkit keys that pgwatchdog does not implement: named as such, so that a user who
// copied a node_exporter file learns why rather than reading "unknown key".
const std::vector<std::string_view> kToolkitOnlyKeys = {
    "cert", "key", "client_ca", "client_allowed_sans", "max_version", "cipher_suites",
    "prefer_server_cipher_suites", "curve_preferences", "http_server_config", "rate_limit"};

struct KeyValue {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

std::vector<KeyValue> entries(const Reporter& report, const YAML::Node& map,
                              const std::vector<std::string_view>& known, const std::string& where) {
  if (!map.IsMap()) report.fail(map, where + "expected a map");
  std::vector<KeyValue> out;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) report.fail(key, where + "a key must be a plain name");
    const std::string& name = key.Scalar();
    if (std::find(kToolkitOnlyKeys.begin(), kToolkitOnlyKeys.end(), name) != kToolkitOnlyKeys.end())
      report.fail(key, where + name + ": not supported by pgwatchdog (an exporter-toolkit key)");
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      report.fail(key, where + "unknown key '" + printable_path(name) + "' (known keys: " + list + ")");
    }
    for (const KeyValue& earlier : out)
      if (earlier.key == name) report.fail(key, where + "key '" + name + "' appears twice");
    out.push_back({name, key, it->second});
  }
  return out;
}

std::string scalar(const Reporter& report, const KeyValue& entry, const std::string& where) {
  if (!entry.value.IsScalar() || entry.value.Scalar().empty())
    report.fail(entry.key_node, where + entry.key + ": expected a non-empty string");
  if (entry.value.Scalar().find('\0') != std::string::npos)
    report.fail(entry.key_node, where + entry.key + ": contains a NUL character");
  return entry.value.Scalar();
}

struct CredentialsDeleter {
  void operator()(gnutls_certificate_credentials_st* c) const noexcept {
    gnutls_certificate_free_credentials(c);
  }
};
using Credentials = std::unique_ptr<gnutls_certificate_credentials_st, CredentialsDeleter>;

Credentials new_credentials() {
  gnutls_certificate_credentials_t raw = nullptr;
  if (gnutls_certificate_allocate_credentials(&raw) < 0) throw std::bad_alloc();
  return Credentials(raw);
}

gnutls_datum_t datum(const std::string& text) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(text.data())),
          static_cast<unsigned>(text.size())};
}

// The same checks the server makes when it starts, made here so that --check-config and a
// SIGHUP find a mismatched key or a file that is no certificate.
void check_tls_files(const Reporter& report, const YAML::Node& at, const TlsServerConfig& tls) {
  const Credentials credentials = new_credentials();
  const gnutls_datum_t cert = datum(tls.cert_pem);
  const gnutls_datum_t key = datum(tls.key_pem);
  const int loaded =
      gnutls_certificate_set_x509_key_mem(credentials.get(), &cert, &key, GNUTLS_X509_FMT_PEM);
  if (loaded < 0)
    report.fail(at, "tls_server_config: cert_file '" + printable_path(tls.cert_file) + "' and key_file '" +
                        printable_path(tls.key_file) + "' do not load as a PEM certificate and its key: " +
                        gnutls_strerror(loaded));
  if (tls.client_auth == ClientAuth::none) return;
  const gnutls_datum_t ca = datum(tls.client_ca_pem);
  const int cas = gnutls_certificate_set_x509_trust_mem(credentials.get(), &ca, GNUTLS_X509_FMT_PEM);
  if (cas <= 0)
    report.fail(at, "tls_server_config: client_ca_file '" + printable_path(tls.client_ca_file) +
                        "' holds no PEM certificate" +
                        (cas < 0 ? std::string(": ") + gnutls_strerror(cas) : std::string()));
}

std::string resolve(const std::string& directory, const std::string& path) {
  if (path.starts_with('/') || directory.empty()) return path;
  return (std::filesystem::path(directory) / path).string();
}

TlsServerConfig parse_tls(const Reporter& report, const KeyValue& section,
                          const std::string& directory) {
  const std::string where = "tls_server_config: ";
  TlsServerConfig tls;
  std::optional<std::string> client_auth_name;
  YAML::Node client_auth_node;
  for (const KeyValue& e : entries(report, section.value,
                                   {"cert_file", "key_file", "client_auth_type", "client_ca_file",
                                    "min_version"},
                                   where)) {
    const std::string value = scalar(report, e, where);
    if (e.key == "cert_file") {
      tls.cert_file = resolve(directory, value);
    } else if (e.key == "key_file") {
      tls.key_file = resolve(directory, value);
    } else if (e.key == "client_ca_file") {
      tls.client_ca_file = resolve(directory, value);
    } else if (e.key == "client_auth_type") {
      client_auth_name = value;
      client_auth_node = e.key_node;
      if (value == "NoClientCert") {
        tls.client_auth = ClientAuth::none;
      } else if (value == "VerifyClientCertIfGiven") {
        tls.client_auth = ClientAuth::verify_if_given;
      } else if (value == "RequireAndVerifyClientCert") {
        tls.client_auth = ClientAuth::require_and_verify;
      } else if (value == "RequestClientCert" || value == "RequireAnyClientCert") {
        report.fail(e.key_node,
                    where + "client_auth_type: '" + value +
                        "' is not supported: the HTTP server asks for a client certificate only "
                        "to verify it against client_ca_file; use VerifyClientCertIfGiven or "
                        "RequireAndVerifyClientCert");
      } else {
        report.fail(e.key_node, where + "client_auth_type: unknown value '" + printable_path(value) +
                                    "' (NoClientCert, VerifyClientCertIfGiven, "
                                    "RequireAndVerifyClientCert)");
      }
    } else {
      if (value == "TLS12")
        tls.min_version = TlsVersion::tls12;
      else if (value == "TLS13")
        tls.min_version = TlsVersion::tls13;
      else if (value == "TLS10" || value == "TLS11")
        report.fail(e.key_node, where + "min_version: '" + value +
                                    "' is not supported (TLS 1.0 and 1.1 are obsolete); use TLS12 "
                                    "or TLS13");
      else
        report.fail(e.key_node,
                    where + "min_version: unknown value '" + printable_path(value) + "' (TLS12, TLS13)");
    }
  }
  if (tls.cert_file.empty()) report.fail(section.key_node, where + "cert_file is required");
  if (tls.key_file.empty()) report.fail(section.key_node, where + "key_file is required");
  if (tls.client_auth != ClientAuth::none && tls.client_ca_file.empty())
    report.fail(client_auth_node, where + "client_auth_type " + *client_auth_name +
                                      " needs client_ca_file (the CA that signs client "
                                      "certificates)");
  if (tls.client_auth == ClientAuth::none && !tls.client_ca_file.empty())
    report.fail(section.key_node, where + "client_ca_file is set but client_auth_type is " +
                                      client_auth_name.value_or("not set (NoClientCert)") +
                                      "; set client_auth_type: RequireAndVerifyClientCert or "
                                      "VerifyClientCertIfGiven");
  tls.cert_pem = read_small_file(tls.cert_file, where + "cert_file");
  tls.key_pem = read_small_file(tls.key_file, where + "key_file");
  if (!tls.client_ca_file.empty())
    tls.client_ca_pem = read_small_file(tls.client_ca_file, where + "client_ca_file");
  check_tls_files(report, section.key_node, tls);
  return tls;
}

// bcrypt as htpasswd -B and exporter-toolkit write it: $2a$, $2b$ or $2y$, a two-digit cost,
// 53 characters of salt and hash in bcrypt's base64 alphabet.
bool is_bcrypt_hash(std::string_view hash) {
  if (hash.size() != 60 || !hash.starts_with("$2") || hash[3] != '$' || hash[6] != '$')
    return false;
  if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') return false;
  if (hash[4] < '0' || hash[4] > '3' || hash[5] < '0' || hash[5] > '9') return false;
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(hash.begin() + 7, hash.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/';
  });
}

std::map<std::string, std::string> parse_users(const Reporter& report, const KeyValue& section) {
  if (!section.value.IsMap())
    report.fail(section.key_node, "basic_auth_users: expected a map of user: bcrypt hash");
  std::map<std::string, std::string> users;
  for (auto it = section.value.begin(); it != section.value.end(); ++it) {
    const YAML::Node user = it->first;
    const YAML::Node hash = it->second;
    if (!user.IsScalar() || user.Scalar().empty())
      report.fail(user, "basic_auth_users: a user name must be a non-empty string");
    const std::string& name = user.Scalar();
    // RFC 7617: the user-id cannot contain a colon.
    if (name.find(':') != std::string::npos || name.find('\0') != std::string::npos)
      report.fail(user, "basic_auth_users: user '" + printable_path(name) + "' contains ':' or NUL");
    // The hash is never echoed: it is a password's equivalent for an offline attack.
    if (!hash.IsScalar() || !is_bcrypt_hash(hash.Scalar()))
      report.fail(user, "basic_auth_users: " + printable_path(name) +
                            ": not a bcrypt hash (expected $2y$, $2b$ or $2a$ and 60 characters, as "
                            "htpasswd -nBC 10 \"\" prints)");
    if (!users.emplace(name, hash.Scalar()).second)
      report.fail(user, "basic_auth_users: user '" + printable_path(name) + "' appears twice");
  }
  return users;
}

}  // namespace

WebConfig parse_web_config(std::string_view yaml_text, std::string_view origin,
                           const std::string& directory) {
  const Reporter report(origin);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    report.fail(std::max(e.mark.line, 0) + 1, "YAML error: " + printable_path(e.msg));
  }
  WebConfig config;
  if (root.IsNull()) return config;  // an empty file: plain HTTP, no authentication
  for (const KeyValue& e : entries(report, root, {"tls_server_config", "basic_auth_users"}, "")) {
    if (e.key == "tls_server_config")
      config.tls = parse_tls(report, e, directory);
    else
      config.basic_auth_users = parse_users(report, e);
  }
  return config;
}

WebConfig load_web_config(const std::string& path) {
  const std::string text = read_small_file(path, "--web.config.file");
  const std::string directory = std::filesystem::path(path).parent_path().string();
  try {
    return parse_web_config(text, path, directory);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(printable_path(path) + ": cannot load the web config: " + printable_path(e.what()));
  }
}

}  // namespace pgwd::daemon
