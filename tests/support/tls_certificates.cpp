#include "support/tls_certificates.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "support/server_tools.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {
namespace {

namespace fs = std::filesystem;

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// A positive serial number in hex, for `openssl x509 -set_serial` (no serial file to keep).
std::string random_serial() {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string out = "0x1";  // leading 1: never zero, never negative
  for (int i = 0; i < 15; ++i) out += kDigits[digit(device)];
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw std::runtime_error("could not write " + path);
}

void set_mode(const std::string& path, mode_t mode) {
  if (::chmod(path.c_str(), mode) != 0)
    throw std::runtime_error(errno_message("chmod " + path, errno));
}

// Own openssl configurations, so that the system's openssl.cnf (its default extensions, its
// prompts) plays no part.
std::string ca_config() {
  return "[req]\n"
         "prompt = no\n"
         "distinguished_name = dn\n"
         "x509_extensions = v3_ca\n"
         "[dn]\n"
         "CN = pgwatchdog test CA\n"
         "[v3_ca]\n"
         "basicConstraints = critical,CA:TRUE\n"
         "keyUsage = critical,keyCertSign,cRLSign\n"
         "subjectKeyIdentifier = hash\n";
}

std::string server_config_file(const std::string& name) {
  std::string alt_names = "DNS:" + name;
  if (name == "localhost") alt_names += ",IP:127.0.0.1";
  return "[req]\n"
         "prompt = no\n"
         "distinguished_name = dn\n"
         "[dn]\n"
         "CN = " +
         name +
         "\n"
         "[v3_server]\n"
         "basicConstraints = critical,CA:FALSE\n"
         "keyUsage = critical,digitalSignature,keyEncipherment\n"
         "extendedKeyUsage = serverAuth\n"
         "subjectAltName = " +
         alt_names +
         "\n"
         "subjectKeyIdentifier = hash\n"
         "authorityKeyIdentifier = keyid\n";
}

}  // namespace

TlsCertificates::TlsCertificates(std::string server_name) : server_name_(std::move(server_name)) {
  if (!valid_host_name(server_name_))
    throw std::invalid_argument("TlsCertificates: not a plain host name: \"" + server_name_ + "\"");
  try {
    generate();
  } catch (...) {
    remove();
    throw;
  }
}

TlsCertificates::~TlsCertificates() {
  remove();
}

void TlsCertificates::generate() {
  fs::path parent = "/tmp";
  if (const char* root = std::getenv("PGWD_TEST_ROOT"); root != nullptr && *root != '\0') {
    parent = root;
    std::error_code ec;
    fs::create_directories(parent, ec);  // mkdtemp below reports a real problem
  }
  std::string pattern = (parent / "pgwd-tls-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error(errno_message("mkdtemp " + pattern, errno));
  dir_ = pattern;
  set_mode(dir_, 0755);  // mkdtemp makes it 0700: the server's OS user must enter it

  ca_file_ = dir_ + "/ca.crt";
  cert_file_ = dir_ + "/server.crt";
  key_file_ = dir_ + "/server.key";
  const std::string ca_key = dir_ + "/ca.key";
  const std::string ca_cnf = dir_ + "/ca.cnf";
  const std::string server_cnf = dir_ + "/server.cnf";
  const std::string csr = dir_ + "/server.csr";
  write_text(ca_cnf, ca_config());
  write_text(server_cnf, server_config_file(server_name_));

  // The CA: a key and its self-signed certificate.
  run_checked(
      {"openssl", "req", "-x509", "-new", "-config", ca_cnf, "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key, "-out", ca_file_, "-days", "2"},
      dir_);
  // The server: a key, a request, and the certificate the CA signs with the v3_server
  // extensions (subjectAltName above all: libpq's verify-full checks the host name there).
  run_checked({"openssl", "req", "-new", "-config", server_cnf, "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key_file_, "-out", csr},
              dir_);
  run_checked({"openssl", "x509", "-req", "-in", csr, "-CA", ca_file_, "-CAkey", ca_key,
               "-set_serial", random_serial(), "-days", "2", "-extfile", server_cnf, "-extensions",
               "v3_server", "-out", cert_file_},
              dir_);
  // Fail here, with openssl's words, rather than later in a TLS handshake.
  run_checked({"openssl", "verify", "-CAfile", ca_file_, cert_file_}, dir_);

  set_mode(ca_file_, 0644);
  set_mode(cert_file_, 0644);
  set_mode(key_file_, 0600);
  if (::geteuid() == 0) {
    chown_to_postgres(cert_file_);
    chown_to_postgres(key_file_);
  }
}

std::pair<std::string, std::string> TlsCertificates::issue_client_certificate(
    const std::string& common_name) const {
  if (!valid_host_name(common_name))
    throw std::invalid_argument("issue_client_certificate: not a plain name: " + common_name);
  const std::string base = dir_ + "/client-" + common_name;
  const std::string cnf = base + ".cnf";
  write_text(cnf, "[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = " + common_name +
                      "\n[v3_client]\nbasicConstraints = critical,CA:FALSE\n"
                      "keyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n");
  run_checked({"openssl", "req", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", base + ".key", "-out",
               base + ".csr"},
              dir_);
  run_checked({"openssl", "x509", "-req", "-in", base + ".csr", "-CA", ca_file_, "-CAkey",
               dir_ + "/ca.key", "-set_serial", random_serial(), "-days", "2", "-extfile", cnf,
               "-extensions", "v3_client", "-out", base + ".crt"},
              dir_);
  set_mode(base + ".key", 0600);
  return {base + ".crt", base + ".key"};
}

std::vector<std::string> TlsCertificates::server_config() const {
  return {
      "ssl = on",
      "ssl_cert_file = " + config_quote(cert_file_),
      "ssl_key_file = " + config_quote(key_file_),
  };
}

void TlsCertificates::remove() noexcept {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

}  // namespace pgwd::testing
