#pragma once

/// \file
/// `--web.config.file`: TLS and basic auth for the HTTP port, in the format of the Prometheus
/// exporter-toolkit (its web-configuration.md), so that the file users already write for
/// node_exporter or postgres_exporter works here:
///
/// ```yaml
/// tls_server_config:
///   cert_file: server.crt          # relative paths: from the web config file's directory
///   key_file: server.key
///   client_auth_type: RequireAndVerifyClientCert
///   client_ca_file: clients-ca.crt
///   min_version: TLS12             # TLS12 (default) or TLS13
/// basic_auth_users:
///   prometheus: $2y$10$...         # bcrypt (htpasswd -nBC 10 "")
/// ```
///
/// The files it names are read when it is loaded (start-up, SIGHUP), and the certificate, key and
/// CA list are checked then with GnuTLS, so a broken file is refused before it replaces a working
/// one.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pgwd::daemon {

/// exporter-toolkit's client_auth_type values (Go's tls.ClientAuthType). The HTTP server
/// (libmicrohttpd with GnuTLS) asks a client for a certificate only when it has a CA list to
/// verify it with, so only the values below are honoured; RequestClientCert and
/// RequireAnyClientCert (a certificate asked for but never verified) are refused by the loader.
enum class ClientAuth {
  none,                ///< NoClientCert
  verify_if_given,     ///< VerifyClientCertIfGiven
  require_and_verify,  ///< RequireAndVerifyClientCert
};

enum class TlsVersion { tls12, tls13 };

struct TlsServerConfig {
  std::string cert_file;  ///< as resolved (absolute, or relative to the working directory)
  std::string key_file;
  std::string client_ca_file;  ///< empty with ClientAuth::none
  ClientAuth client_auth = ClientAuth::none;
  TlsVersion min_version = TlsVersion::tls12;
  /// The files' contents, PEM, read and checked at load time.
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;
};

struct WebConfig {
  std::optional<TlsServerConfig> tls;
  /// user -> bcrypt hash. Empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;
};

/// Reads, parses and checks a web config file. Throws ConfigError, one line naming the file, the
/// line and the key ("web.yml:3: tls_server_config: client_auth_type: unknown value 'X' (...)"),
/// or the file that cannot be read. Never shows a hash.
WebConfig load_web_config(const std::string& path);

/// The same, from text; `origin` starts the messages and `directory` resolves relative paths.
WebConfig parse_web_config(std::string_view yaml_text, std::string_view origin,
                           const std::string& directory);

}  // namespace pgwd::daemon
