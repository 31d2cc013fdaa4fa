#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pgwd::testing {

/// A throwaway certificate authority and a server certificate it signed, for TLS tests: made
/// with the openssl CLI (EC P-256 keys, valid for two days) in a fresh directory under
/// $PGWD_TEST_ROOT if set, else /tmp (mode 755, so the server's OS user can enter it).
///
/// The server certificate has CN = server_name and subjectAltName DNS:server_name, plus
/// IP:127.0.0.1 when server_name is "localhost". Its key is mode 0600 and, when running as root
/// (the test cluster then runs as the OS user postgres), the key and certificate belong to
/// postgres: PostgreSQL refuses a key that is not its own or that others can read.
///
/// Create it before the TestCluster that uses server_config(); the directory is removed by the
/// destructor, so it must outlive that cluster.
class TlsCertificates {
 public:
  /// Throws std::invalid_argument for a name with characters other than [A-Za-z0-9.-], and
  /// std::runtime_error (with openssl's output) if a certificate cannot be made; nothing is
  /// left behind then.
  explicit TlsCertificates(std::string server_name = "localhost");
  /// Removes the directory. Never throws.
  ~TlsCertificates();
  TlsCertificates(const TlsCertificates&) = delete;
  TlsCertificates& operator=(const TlsCertificates&) = delete;
  TlsCertificates(TlsCertificates&&) = delete;
  TlsCertificates& operator=(TlsCertificates&&) = delete;

  const std::string& server_name() const noexcept { return server_name_; }
  const std::string& directory() const noexcept { return dir_; }
  /// The CA's self-signed certificate: a client's sslrootcert.
  const std::string& ca_file() const noexcept { return ca_file_; }
  /// The server's certificate and key: ssl_cert_file and ssl_key_file.
  const std::string& cert_file() const noexcept { return cert_file_; }
  const std::string& key_file() const noexcept { return key_file_; }

  /// A client certificate (CN = common_name, extendedKeyUsage clientAuth) that this CA signed,
  /// and its key (mode 0600), in the same directory: for servers that verify client
  /// certificates. Returns {certificate path, key path}. Throws std::runtime_error.
  std::pair<std::string, std::string> issue_client_certificate(const std::string& common_name) const;

  /// postgresql.conf lines enabling TLS with these files (ssl = on, ssl_cert_file,
  /// ssl_key_file), for ClusterSettings::extra_config.
  std::vector<std::string> server_config() const;

 private:
  void generate();
  void remove() noexcept;

  std::string server_name_;
  std::string dir_;
  std::string ca_file_;
  std::string cert_file_;
  std::string key_file_;
};

}  // namespace pgwd::testing
